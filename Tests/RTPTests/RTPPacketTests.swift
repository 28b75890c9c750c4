import RTP
import Testing
import TestSupport

@Suite struct RTPPacketTests {
    /// A VP8 packet laid out as Chromium sends it: marker, PT 96, one-byte extensions for abs-send-time (id 2,
    /// 3 bytes), transport-wide-cc (id 3, 2 bytes) and mid (id 4, "0"), padded to a word.
    static let chromiumLike = [UInt8](hex: """
        90 e0 1a 2b 00 01 e2 40 de ad be ef
        be de 00 03 22 12 34 56 31 00 07 40 30 00 00 00
        90 10 00 9d 01 2a
        """)

    @Test func parsesAChromiumStyleHeader() throws {
        let p = try RTPPacket(parsing: Self.chromiumLike)
        #expect(p.header.marker && p.header.payloadType == 96 && p.header.sequenceNumber == 0x1A2B)
        #expect(p.header.timestamp == 123_456 && p.header.ssrc == 0xDEAD_BEEF && p.header.csrcs.isEmpty)
        #expect(p.header.extensions == [.init(id: 2, value: [0x12, 0x34, 0x56]), .init(id: 3, value: [0x00, 0x07]),
                                        .init(id: 4, value: [0x30])])
        #expect(p.header.extensionValue(id: 4) == Array("0".utf8))
        #expect(Array(p.payload) == [0x90, 0x10, 0x00, 0x9D, 0x01, 0x2A])
        #expect(p.write() == Self.chromiumLike, "writes back byte for byte")
        #expect(!RTPPacket.isRTCP(Self.chromiumLike))
        #expect(RTPPacket.isRTCP([0x81, 201, 0, 1]) && RTPPacket.isRTCP([0x81, 206, 0, 2]))
    }

    @Test func twoByteExtensionsCSRCsAndPadding() throws {
        var h = RTPHeader(payloadType: 111, sequenceNumber: 65535, timestamp: 0xFFFF_FFFF, ssrc: 1, csrcs: [7, 8])
        h.extensions = [.init(id: 20, value: [1, 2, 3]), .init(id: 1, value: [])]
        let written = RTPPacket(header: h, payload: [9, 9, 9][...]).write()
        let back = try RTPPacket(parsing: written)
        #expect(back.header == h && Array(back.payload) == [9, 9, 9])
        // Padding: P bit, 3 bytes of padding, the last one counts them.
        var padded = RTPPacket(header: RTPHeader(payloadType: 96, sequenceNumber: 1, timestamp: 2, ssrc: 3), payload: [5, 6][...]).write()
        padded[0] |= 0x20
        padded += [0, 0, 3]
        let p = try RTPPacket(parsing: padded)
        #expect(Array(p.payload) == [5, 6] && p.padding == 3)
    }

    @Test(arguments: [
        ("short", [UInt8](hex: "80 60 00 01 00 00 00 02 00 00 00"), RTPError.truncated(needed: 12, available: 11)),
        ("version 1", [UInt8](hex: "40 60 00 01 00 00 00 02 00 00 00 03"), .badVersion(1)),
        ("CSRC count past the end", [UInt8](hex: "82 60 00 01 00 00 00 02 00 00 00 03 00 00 00 04"), .headerOverrun),
        ("extension header cut", [UInt8](hex: "90 60 00 01 00 00 00 02 00 00 00 03 be de"), .headerOverrun),
        ("extension length past the end", [UInt8](hex: "90 60 00 01 00 00 00 02 00 00 00 03 be de 00 02 10 01"), .headerOverrun),
        ("one-byte element past its block", [UInt8](hex: "90 60 00 01 00 00 00 02 00 00 00 03 be de 00 01 13 01 02 03 ff"), .badExtension),
        ("two-byte element past its block", [UInt8](hex: "90 60 00 01 00 00 00 02 00 00 00 03 10 00 00 01 05 09 01 02"), .badExtension),
        ("padding count 0", [UInt8](hex: "a0 60 00 01 00 00 00 02 00 00 00 03 01 00"), .badPadding(0)),
        ("padding past the header", [UInt8](hex: "a0 60 00 01 00 00 00 02 00 00 00 03 01 09"), .badPadding(9)),
    ])
    func malformedPacketsThrowANamedError(_ name: String, _ bytes: [UInt8], _ expected: RTPError) {
        #expect(throws: expected, "\(name)") { try RTPPacket(parsing: bytes) }
    }

    /// Flipped bits and cut lengths: every mutation parses or throws, and what parses writes back to bytes
    /// that parse to the same header.
    @Test func mutationsNeverTrap() {
        var rng = SplitMix64(state: 0x7270)
        for _ in 0..<20_000 {
            var b = Self.chromiumLike
            for _ in 0..<(1 + Int(rng.next() % 3)) { b[Int(rng.next() % UInt64(b.count))] ^= UInt8(truncatingIfNeeded: rng.next()) | 1 }
            if rng.next() % 4 == 0 { b.removeLast(Int(rng.next() % UInt64(b.count))) }
            guard let p = try? RTPPacket(parsing: b) else { continue }
            if p.header.otherExtension == nil, let again = try? RTPPacket(parsing: p.write()) {
                #expect(again.header.ssrc == p.header.ssrc && again.payload == p.payload)
            }
        }
    }
}
