import NIOCore
import Testing
import TestSupport
@testable import FLV

@Suite struct VideoTagHeaderTests {
    typealias H = VideoTagHeader

    struct Vector: Sendable, CustomTestStringConvertible {
        let name: String
        let hex: String
        let expected: VideoTagHeader
        var testDescription: String { name }
    }

    static let avc1 = H.fourCC("avc1")
    static let hvc1 = H.fourCC("hvc1")
    static let av01 = H.fourCC("av01")
    static let vp09 = H.fourCC("vp09")

    /// Legacy layouts per FLV spec E.4.3.1; enhanced per Enhanced RTMP v1/v2 "Enhanced Video".
    static let vectors: [Vector] = [
        .init(name: "legacy AVC sequence header (ffmpeg)", hex: "1700000000016400",
              expected: H(frameType: .key, codec: .avc, packetType: .sequenceStart, compositionTime: 0, headerSize: 5)),
        .init(name: "legacy AVC keyframe cts 67 (ffmpeg)", hex: "1701000043000002",
              expected: H(frameType: .key, codec: .avc, packetType: .codedFrames, compositionTime: 67, headerSize: 5)),
        .init(name: "legacy AVC inter, negative cts -33", hex: "2701ffffdf00",
              expected: H(frameType: .inter, codec: .avc, packetType: .codedFrames, compositionTime: -33, headerSize: 5)),
        .init(name: "legacy AVC cts -2^23", hex: "2701800000",
              expected: H(frameType: .inter, codec: .avc, packetType: .codedFrames, compositionTime: -8_388_608, headerSize: 5)),
        .init(name: "legacy AVC cts 2^23-1", hex: "27017fffff",
              expected: H(frameType: .inter, codec: .avc, packetType: .codedFrames, compositionTime: 8_388_607, headerSize: 5)),
        .init(name: "legacy AVC end of sequence (ffmpeg)", hex: "1702000000",
              expected: H(frameType: .key, codec: .avc, packetType: .sequenceEnd, compositionTime: 0, headerSize: 5)),
        .init(name: "legacy AVC sequence header ignores nonzero cts", hex: "1700000010",
              expected: H(frameType: .key, codec: .avc, packetType: .sequenceStart, compositionTime: 0, headerSize: 5)),
        .init(name: "legacy AVC unknown packet type", hex: "1703000000",
              expected: H(frameType: .key, codec: .avc, packetType: .other(3), compositionTime: 0, headerSize: 5)),
        .init(name: "legacy HEVC (codec id 12)", hex: "1c01000021",
              expected: H(frameType: .key, codec: .legacy(12), packetType: .codedFrames, compositionTime: 33, headerSize: 5)),
        .init(name: "legacy Sorenson H.263", hex: "2200",
              expected: H(frameType: .inter, codec: .legacy(2), packetType: .codedFrames, compositionTime: 0, headerSize: 1)),
        .init(name: "legacy VP6 disposable", hex: "3400",
              expected: H(frameType: .disposableInter, codec: .legacy(4), packetType: .codedFrames, compositionTime: 0, headerSize: 1)),
        .init(name: "legacy command frame", hex: "5701",
              expected: H(frameType: .command, codec: .avc, packetType: .other(0xFF), compositionTime: 0, headerSize: 1)),
        .init(name: "enhanced hvc1 sequence start", hex: "90" + "68766331" + "01",
              expected: H(frameType: .key, codec: .fourCC(hvc1), packetType: .sequenceStart, compositionTime: 0, headerSize: 5)),
        .init(name: "enhanced hvc1 coded frames with cts", hex: "91" + "68766331" + "000050",
              expected: H(frameType: .key, codec: .fourCC(hvc1), packetType: .codedFrames, compositionTime: 80, headerSize: 8)),
        .init(name: "enhanced hvc1 inter negative cts", hex: "a1" + "68766331" + "fffff6",
              expected: H(frameType: .inter, codec: .fourCC(hvc1), packetType: .codedFrames, compositionTime: -10, headerSize: 8)),
        .init(name: "enhanced hvc1 CodedFramesX", hex: "a3" + "68766331" + "00",
              expected: H(frameType: .inter, codec: .fourCC(hvc1), packetType: .codedFrames, compositionTime: 0, headerSize: 5)),
        .init(name: "enhanced avc1 coded frames", hex: "91" + "61766331" + "000021",
              expected: H(frameType: .key, codec: .fourCC(avc1), packetType: .codedFrames, compositionTime: 33, headerSize: 8)),
        .init(name: "enhanced av01 coded frames have no cts", hex: "91" + "61763031" + "0a0b",
              expected: H(frameType: .key, codec: .fourCC(av01), packetType: .codedFrames, compositionTime: 0, headerSize: 5)),
        .init(name: "enhanced vp09 sequence end", hex: "92" + "76703039",
              expected: H(frameType: .key, codec: .fourCC(vp09), packetType: .sequenceEnd, compositionTime: 0, headerSize: 5)),
        .init(name: "enhanced metadata", hex: "94" + "68766331" + "02",
              expected: H(frameType: .key, codec: .fourCC(hvc1), packetType: .metadata, compositionTime: 0, headerSize: 5)),
        .init(name: "enhanced metadata with reserved frame type 0", hex: "84" + "61763031",
              expected: H(frameType: .command, codec: .fourCC(av01), packetType: .metadata, compositionTime: 0, headerSize: 5)),
        .init(name: "enhanced MPEG2TSSequenceStart", hex: "95" + "61763031",
              expected: H(frameType: .key, codec: .fourCC(av01), packetType: .other(5), compositionTime: 0, headerSize: 5)),
        .init(name: "enhanced command frame has no FourCC", hex: "d1" + "00",
              expected: H(frameType: .command, codec: .fourCC(0), packetType: .other(0xFF), compositionTime: 0, headerSize: 1)),
        .init(name: "ModEx timestamp offset then hvc1 coded frames", hex: "97" + "02" + "0f4240" + "01" + "68766331" + "000000",
              expected: H(frameType: .key, codec: .fourCC(hvc1), packetType: .codedFrames, compositionTime: 0, headerSize: 13)),
        .init(name: "ModEx with 16-bit size", hex: "a7" + "ff" + "0100" + String(repeating: "00", count: 257) + "03" + "61763031",
              expected: H(frameType: .inter, codec: .fourCC(av01), packetType: .codedFrames, compositionTime: 0, headerSize: 1 + 3 + 257 + 1 + 4)),
        .init(name: "multitrack one track avc1", hex: "96" + "01" + "61766331" + "00",
              expected: H(frameType: .key, codec: .fourCC(avc1), packetType: .other(6), compositionTime: 0, headerSize: 6)),
        .init(name: "multitrack many codecs", hex: "96" + "20" + "68766331" + "00",
              expected: H(frameType: .key, codec: .fourCC(hvc1), packetType: .other(6), compositionTime: 0, headerSize: 6)),
    ]

    @Test(arguments: vectors)
    func parses(_ vector: Vector) throws {
        let body = ByteBuffer(hex: vector.hex)
        let header = try VideoTagHeader(parsing: body)
        #expect(header == vector.expected)
        #expect(body.readerIndex == 0)
    }

    /// 0x97/0x90 have the AVC codec id's low bits set or clear in ways a legacy parser would
    /// misread; the enhanced bit must win.
    @Test func enhancedHeaderIsNeverAVC() throws {
        let hevc = try VideoTagHeader(parsing: ByteBuffer(hex: "97" + "00" + "00" + "01" + "68766331" + "000000"))
        #expect(!hevc.isH264)
        #expect(hevc.codec.name == "hevc")
        #expect(try VideoTagHeader(parsing: ByteBuffer(hex: "91" + "61766331" + "000000")).isH264)
        #expect(try VideoTagHeader(parsing: ByteBuffer(hex: "1701000000")).isH264)
        #expect(try !VideoTagHeader(parsing: ByteBuffer(hex: "1c01000000")).isH264)
    }

    @Test func codecNames() {
        #expect(H.Codec.avc.name == "h264")
        #expect(H.Codec.legacy(12).name == "hevc")
        #expect(H.Codec.legacy(2).name == "flv1")
        #expect(H.Codec.legacy(4).name == "vp6")
        #expect(H.Codec.fourCC(Self.hvc1).name == "hevc")
        #expect(H.Codec.fourCC(Self.av01).name == "av1")
        #expect(H.Codec.fourCC(Self.vp09).name == "vp9")
        #expect(H.Codec.fourCC(Self.avc1).name == "h264")
        #expect(H.Codec.fourCC(H.fourCC("abcd")).name == "abcd")
        #expect(H.Codec.fourCC(0x0001_7F41).name == "0x00017f41")
        #expect(H.fourCC("hvc1") == 0x6876_6331)
    }

    struct Malformed: Sendable, CustomTestStringConvertible {
        let name: String
        let hex: String
        let error: FLVError
        var testDescription: String { name }
    }

    static let malformed: [Malformed] = [
        .init(name: "empty", hex: "", error: .truncated("VideoTagHeader")),
        .init(name: "AVC without packet type", hex: "17", error: .truncated("AVCPacketType")),
        .init(name: "AVC cut in cts", hex: "170100", error: .truncated("CompositionTime")),
        .init(name: "legacy frame type 0", hex: "07", error: .invalid("video frame type 0")),
        .init(name: "legacy frame type 6", hex: "67", error: .invalid("video frame type 6")),
        .init(name: "enhanced frame type 7", hex: "f1" + "68766331", error: .invalid("video frame type 7")),
        .init(name: "enhanced without FourCC", hex: "90", error: .truncated("FourCC")),
        .init(name: "enhanced cut FourCC", hex: "906876", error: .truncated("FourCC")),
        .init(name: "enhanced hvc1 cut in cts", hex: "91" + "68766331" + "00", error: .truncated("CompositionTime")),
        .init(name: "ModEx without size", hex: "97", error: .truncated("modExDataSize")),
        .init(name: "ModEx cut 16-bit size", hex: "97ff01", error: .truncated("modExDataSize")),
        .init(name: "ModEx data past end", hex: "97" + "05" + "0000", error: .truncated("modExData")),
        .init(name: "ModEx without packet type", hex: "97" + "00" + "00", error: .truncated("packetModExType")),
        .init(name: "ModEx chain cut", hex: "97" + "00" + "00" + "07" + "00", error: .truncated("modExData")),
        .init(name: "multitrack cut", hex: "96", error: .truncated("videoMultitrackType")),
        .init(name: "nested multitrack", hex: "96" + "06" + "68766331", error: .invalid("nested video Multitrack")),
        .init(name: "multitrack without FourCC", hex: "96" + "01" + "6876", error: .truncated("FourCC")),
    ]

    @Test(arguments: malformed)
    func rejectsMalformed(_ vector: Malformed) {
        #expect(throws: vector.error) {
            try VideoTagHeader(parsing: ByteBuffer(hex: vector.hex))
        }
    }
}
