import Testing
@testable import Codecs

@Suite struct BitReaderTests {
    @Test func fixedWidthReads() throws {
        var r = BitReader([0b1010_0000, 0xFF, 0x00, 0x12, 0x34])
        #expect(try r.bit("a") == true)
        #expect(try r.bits(3, "b") == 0b010)
        #expect(try r.bits(4, "c") == 0)
        #expect(try r.bits(32, "d") == 0xFF00_1234)
        #expect(r.bitsLeft == 0)
        #expect(throws: CodecError.truncated("e")) { try r.bit("e") }
    }

    /// Table 9-2: codeNum for the first bit strings, and se mapping of Table 9-3.
    @Test(arguments: [
        ([0b1000_0000], UInt32(0)),
        ([0b0100_0000], 1),
        ([0b0110_0000], 2),
        ([0b0010_0000], 3),
        ([0b0011_1000], 6),
        ([0b0001_0000], 7),
    ] as [([UInt8], UInt32)])
    func unsignedExpGolomb(bytes: [UInt8], value: UInt32) throws {
        var r = BitReader(bytes)
        #expect(try r.ue("v") == value)
    }

    @Test func signedExpGolomb() throws {
        // codeNum 0,1,2,3,4 -> 0, +1, -1, +2, -2 ; bits: 1 010 011 00100 00101
        var r = BitReader([0b1010_0110, 0b0100_0010, 0b1000_0000])
        #expect(try r.se("v") == 0)
        #expect(try r.se("v") == 1)
        #expect(try r.se("v") == -1)
        #expect(try r.se("v") == 2)
        #expect(try r.se("v") == -2)
    }

    @Test func largestExpGolombValues() throws {
        // 31 zeros, a one, 31 ones: 2^32 - 2, the largest legal ue(v).
        var w = BitWriter()
        w.write(0, bits: 31)
        w.write(1, bits: 1)
        w.write(0x7FFF_FFFF, bits: 31)
        var r = BitReader(w.bytes)
        #expect(try r.ue("v") == UInt32.max - 1)
        #expect(r.bitsLeft == 1)
    }

    @Test func seExtremes() throws {
        // codeNum 2^32-3 (odd) -> +(2^31-1); codeNum 2^32-2 (even) -> -(2^31-1)
        var w = BitWriter()
        w.write(0, bits: 31); w.write(1, bits: 1); w.write(0x7FFF_FFFE, bits: 31)
        w.write(0, bits: 31); w.write(1, bits: 1); w.write(0x7FFF_FFFF, bits: 31)
        var r = BitReader(w.bytes)
        #expect(try r.se("v") == Int32.max)
        #expect(try r.se("v") == -Int32.max)
    }

    @Test func malformedExpGolomb() {
        var tooLong = BitReader([0, 0, 0, 0, 0x80])
        #expect(throws: CodecError.invalid("v: exp-Golomb code longer than 32 bits")) { try tooLong.ue("v") }
        var cutPrefix = BitReader([0])
        #expect(throws: CodecError.truncated("v")) { try cutPrefix.ue("v") }
        var cutSuffix = BitReader([0b0000_0001])
        #expect(throws: CodecError.truncated("v")) { try cutSuffix.ue("v") }
        var empty = BitReader([])
        #expect(throws: CodecError.truncated("v")) { try empty.se("v") }
        #expect(throws: CodecError.truncated("w")) { try empty.skip(1, "w") }
    }

    @Test func writerRoundTrip() throws {
        var w = BitWriter()
        w.write(true)
        w.write(0x5, bits: 3)
        w.write(0xABCDE, bits: 20)
        w.write(0, bits: 0)
        #expect(w.bytes == [0xDA, 0xBC, 0xDE])
        var r = BitReader(w.bytes)
        #expect(try r.bit("a"))
        #expect(try r.bits(3, "b") == 5)
        #expect(try r.bits(20, "c") == 0xABCDE)
    }
}
