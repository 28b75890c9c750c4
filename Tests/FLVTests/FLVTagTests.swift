import NIOCore
import Testing
import TestSupport
@testable import FLV

@Suite struct FLVTagTests {
    @Test func extendedTimestampRoundTrip() throws {
        var buffer = ByteBuffer()
        let tag = FLVTag(type: .video, timestamp: 0x0102_0304, body: ByteBuffer(hex: "1701000000aa"))
        tag.write(to: &buffer)
        // 24-bit low part first, then TimestampExtended as the high byte (E.4.1).
        #expect(Array(buffer.readableBytesView) == [UInt8](hex: "09000006020304010000001701000000aa00000011"))
        #expect(try FLVTag.parse(from: &buffer) == tag)
        #expect(buffer.readableBytes == 0)
    }

    @Test func emptyBodyRoundTrip() throws {
        var buffer = ByteBuffer()
        FLVTag.write(type: .audio, timestamp: 0, body: ByteBuffer(), to: &buffer)
        #expect(buffer.readableBytes == 15)
        let tag = try #require(try FLVTag.parse(from: &buffer))
        #expect(tag.type == .audio && tag.body.readableBytes == 0)
    }

    @Test func bodyIsASliceOfTheInput() throws {
        var buffer = ByteBuffer(hex: "12" + "000003" + "000000" + "00" + "000000" + "020304" + "0000000e")
        let tag = try #require(try FLVTag.parse(from: &buffer))
        #expect(Array(tag.body.readableBytesView) == [2, 3, 4])
        #expect(tag.type == .script)
    }

    /// PreviousTagSize is consumed but not validated (muxers get it wrong); StreamID is ignored.
    @Test func toleratesWrongPreviousTagSizeAndStreamID() throws {
        var buffer = ByteBuffer(hex: "08" + "000001" + "00000a" + "00" + "000001" + "af" + "deadbeef")
        let tag = try #require(try FLVTag.parse(from: &buffer))
        #expect(tag.timestamp == 10 && buffer.readableBytes == 0)
    }

    @Test func incompleteTagReturnsNilAndConsumesNothing() throws {
        var whole = ByteBuffer()
        FLVTag.write(type: .video, timestamp: 40, body: ByteBuffer(hex: "2701000000"), to: &whole)
        let bytes = Array(whole.readableBytesView)
        for length in 0..<bytes.count {
            var partial = ByteBuffer(bytes: bytes.prefix(length))
            #expect(try FLVTag.parse(from: &partial) == nil)
            #expect(partial.readerIndex == 0)
        }
    }

    struct Malformed: Sendable, CustomTestStringConvertible {
        let name: String
        let hex: String
        var maxBodySize = 16 << 20
        let error: FLVError
        var testDescription: String { name }
    }

    static let malformed: [Malformed] = [
        .init(name: "tag type 0", hex: "0000000000000000000000", error: .invalid("tag type 0")),
        .init(name: "tag type 7", hex: "0700000000000000000000", error: .invalid("tag type 7")),
        .init(name: "tag type 15 (AMF3 data)", hex: "0f00000000000000000000", error: .invalid("tag type 15")),
        .init(name: "filtered audio", hex: "2800000000000000000000", error: .invalid("filtered (encrypted) tag")),
        .init(name: "filtered video", hex: "2900000000000000000000", error: .invalid("filtered (encrypted) tag")),
        .init(name: "DataSize above limit", hex: "0900100100000000000000", maxBodySize: 4096, error: .invalid("DataSize 4097 exceeds 4096")),
        .init(name: "DataSize 16 MiB - 1 above 1 MiB limit", hex: "09ffffff00000000000000", maxBodySize: 1 << 20, error: .invalid("DataSize 16777215 exceeds 1048576")),
    ]

    /// Rejected from the 11-byte header alone, before any body bytes arrive.
    @Test(arguments: malformed)
    func rejectsMalformed(_ vector: Malformed) {
        var buffer = ByteBuffer(hex: vector.hex)
        #expect(throws: vector.error) {
            try FLVTag.parse(from: &buffer, maxBodySize: vector.maxBodySize)
        }
    }

    @Test func reservedFMSBitsAreIgnored() throws {
        var buffer = ByteBuffer(hex: "c8" + "000000" + "000000" + "00" + "000000" + "0000000b")
        #expect(try FLVTag.parse(from: &buffer)?.type == .audio)
    }
}
