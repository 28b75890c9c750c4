import NIOCore
import Testing
import TestSupport
@testable import FLV

@Suite struct AudioTagHeaderTests {
    typealias A = AudioTagHeader

    struct Vector: Sendable, CustomTestStringConvertible {
        let name: String
        let hex: String
        let expected: AudioTagHeader
        var testDescription: String { name }
    }

    static let opus = VideoTagHeader.fourCC("Opus")
    static let mp4a = VideoTagHeader.fourCC("mp4a")
    static let flac = VideoTagHeader.fourCC("fLaC")

    /// Legacy per FLV spec E.4.2.1; enhanced per Enhanced RTMP v2 "Enhanced Audio".
    static let vectors: [Vector] = [
        .init(name: "AAC sequence header (ffmpeg)", hex: "af00120856e500",
              expected: A(format: .aac, packetType: .sequenceStart, soundRate: 3, soundSize: 1, channels: 1, headerSize: 2)),
        .init(name: "AAC raw (ffmpeg)", hex: "af01210a",
              expected: A(format: .aac, packetType: .codedFrames, soundRate: 3, soundSize: 1, channels: 1, headerSize: 2)),
        .init(name: "AAC unknown packet type", hex: "ae02",
              expected: A(format: .aac, packetType: .other(2), soundRate: 3, soundSize: 1, channels: 0, headerSize: 2)),
        .init(name: "MP3 22 kHz mono", hex: "2a" + "fffb",
              expected: A(format: .legacy(2), packetType: .codedFrames, soundRate: 2, soundSize: 1, channels: 0, headerSize: 1)),
        .init(name: "G.711 A-law 5.5 kHz 8-bit", hex: "70",
              expected: A(format: .legacy(7), packetType: .codedFrames, soundRate: 0, soundSize: 0, channels: 0, headerSize: 1)),
        .init(name: "enhanced Opus sequence start", hex: "90" + "4f707573" + "01",
              expected: A(format: .fourCC(opus), packetType: .sequenceStart, soundRate: 0, soundSize: 0, channels: 0, headerSize: 5)),
        .init(name: "enhanced Opus coded frames", hex: "91" + "4f707573",
              expected: A(format: .fourCC(opus), packetType: .codedFrames, soundRate: 0, soundSize: 0, channels: 0, headerSize: 5)),
        .init(name: "enhanced mp4a sequence start", hex: "90" + "6d703461" + "1210",
              expected: A(format: .fourCC(mp4a), packetType: .sequenceStart, soundRate: 0, soundSize: 0, channels: 0, headerSize: 5)),
        .init(name: "enhanced sequence end", hex: "92" + "664c6143",
              expected: A(format: .fourCC(flac), packetType: .other(2), soundRate: 0, soundSize: 0, channels: 0, headerSize: 5)),
        .init(name: "enhanced multichannel config", hex: "94" + "4f707573" + "0102",
              expected: A(format: .fourCC(opus), packetType: .other(4), soundRate: 0, soundSize: 0, channels: 0, headerSize: 5)),
        .init(name: "enhanced ModEx then coded frames", hex: "97" + "02" + "000001" + "01" + "4f707573",
              expected: A(format: .fourCC(opus), packetType: .codedFrames, soundRate: 0, soundSize: 0, channels: 0, headerSize: 10)),
        .init(name: "enhanced multitrack", hex: "95" + "11" + "4f707573" + "00",
              expected: A(format: .fourCC(opus), packetType: .other(5), soundRate: 0, soundSize: 0, channels: 0, headerSize: 6)),
    ]

    @Test(arguments: vectors)
    func parses(_ vector: Vector) throws {
        let body = ByteBuffer(hex: vector.hex)
        #expect(try AudioTagHeader(parsing: body) == vector.expected)
        #expect(body.readerIndex == 0)
    }

    @Test func aacDetectionAndNames() throws {
        #expect(try AudioTagHeader(parsing: ByteBuffer(hex: "af01")).isAAC)
        #expect(try AudioTagHeader(parsing: ByteBuffer(hex: "91" + "6d703461")).isAAC)
        #expect(try !AudioTagHeader(parsing: ByteBuffer(hex: "91" + "4f707573")).isAAC)
        #expect(try !AudioTagHeader(parsing: ByteBuffer(hex: "2f")).isAAC)
        #expect(A.Format.aac.name == "aac")
        #expect(A.Format.legacy(2).name == "mp3")
        #expect(A.Format.fourCC(Self.opus).name == "opus")
        #expect(A.Format.fourCC(Self.flac).name == "flac")
        #expect(A.Format.fourCC(VideoTagHeader.fourCC("ac-3")).name == "ac3")
        #expect(A.Format.fourCC(VideoTagHeader.fourCC("ec-3")).name == "eac3")
        #expect(A.Format.fourCC(VideoTagHeader.fourCC("zzzz")).name == "zzzz")
    }

    struct Malformed: Sendable, CustomTestStringConvertible {
        let name: String
        let hex: String
        let error: FLVError
        var testDescription: String { name }
    }

    static let malformed: [Malformed] = [
        .init(name: "empty", hex: "", error: .truncated("AudioTagHeader")),
        .init(name: "AAC without packet type", hex: "af", error: .truncated("AACPacketType")),
        .init(name: "enhanced without FourCC", hex: "90", error: .truncated("FourCC")),
        .init(name: "enhanced cut FourCC", hex: "904f70", error: .truncated("FourCC")),
        .init(name: "ModEx data past end", hex: "97" + "03" + "00", error: .truncated("modExData")),
        .init(name: "ModEx without packet type", hex: "97" + "00" + "00", error: .truncated("packetModExType")),
        .init(name: "multitrack cut", hex: "95", error: .truncated("audioMultitrackType")),
        .init(name: "nested multitrack", hex: "95" + "05" + "4f707573", error: .invalid("nested audio Multitrack")),
    ]

    @Test(arguments: malformed)
    func rejectsMalformed(_ vector: Malformed) {
        #expect(throws: vector.error) {
            try AudioTagHeader(parsing: ByteBuffer(hex: vector.hex))
        }
    }
}
