import NIOCore
import Testing
import TestSupport
@testable import FLV

@Suite struct FLVHeaderTests {
    @Test func writesNineBytesAndPreviousTagSize0() {
        var buffer = ByteBuffer()
        FLVHeader(hasAudio: true, hasVideo: true).write(to: &buffer)
        #expect(Array(buffer.readableBytesView) == [UInt8](hex: "464c560105000000090000000" + "0"))
        var audioOnly = ByteBuffer()
        FLVHeader(hasAudio: true, hasVideo: false).write(to: &audioOnly)
        #expect(audioOnly.getInteger(at: 4, as: UInt8.self) == 0x04)
        #expect(FLVHeader.size == 9)
    }

    @Test func parsesAndConsumesCapturedHeader() throws {
        var buffer = ByteBuffer(bytes: try Fixture.bytes("small.flv"))
        let header = try FLVHeader(parsing: &buffer)
        #expect(header.hasAudio && header.hasVideo)
        #expect(buffer.readerIndex == 13)
    }

    @Test func roundTrip() throws {
        for (audio, video) in [(false, false), (true, false), (false, true), (true, true)] {
            var buffer = ByteBuffer()
            FLVHeader(hasAudio: audio, hasVideo: video).write(to: &buffer)
            #expect(try FLVHeader(parsing: &buffer) == FLVHeader(hasAudio: audio, hasVideo: video))
            #expect(buffer.readableBytes == 0)
        }
    }

    @Test func skipsToDataOffset() throws {
        var buffer = ByteBuffer(hex: "464c5601010000000c" + "aabbcc" + "00000000" + "09")
        #expect(try FLVHeader(parsing: &buffer) == FLVHeader(hasAudio: false, hasVideo: true))
        #expect(buffer.readableBytes == 1)
    }

    struct Malformed: Sendable, CustomTestStringConvertible {
        let name: String
        let hex: String
        let error: FLVError
        var testDescription: String { name }
    }

    static let malformed: [Malformed] = [
        .init(name: "empty", hex: "", error: .truncated("Signature")),
        .init(name: "cut signature", hex: "464c", error: .truncated("Signature")),
        .init(name: "wrong signature", hex: "464c58010500000009", error: .invalid("signature is not 'FLV'")),
        .init(name: "cut before version", hex: "464c56", error: .truncated("Version")),
        .init(name: "version 2", hex: "464c56020500000009", error: .invalid("version 2")),
        .init(name: "cut before flags", hex: "464c5601", error: .truncated("TypeFlags")),
        .init(name: "cut in DataOffset", hex: "464c56010500", error: .truncated("DataOffset")),
        .init(name: "DataOffset 8", hex: "464c56010500000008", error: .invalid("DataOffset 8 < 9")),
        .init(name: "DataOffset 4 GiB", hex: "464c560105ffffffff", error: .invalid("DataOffset 4294967295 too large")),
        .init(name: "cut in padding", hex: "464c5601050000000c" + "aa", error: .truncated("header padding")),
        .init(name: "no PreviousTagSize0", hex: "464c56010500000009", error: .truncated("PreviousTagSize0")),
        .init(name: "cut PreviousTagSize0", hex: "464c56010500000009" + "0000", error: .truncated("PreviousTagSize0")),
    ]

    @Test(arguments: malformed)
    func rejectsMalformedWithoutConsuming(_ vector: Malformed) {
        var buffer = ByteBuffer(hex: vector.hex)
        #expect(throws: vector.error) {
            try FLVHeader(parsing: &buffer)
        }
        #expect(buffer.readerIndex == 0)
    }
}
