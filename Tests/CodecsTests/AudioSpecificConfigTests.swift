import NIOCore
import Testing
import TestSupport
@testable import Codecs

@Suite struct AudioSpecificConfigTests {
    struct Captured: Sendable, CustomTestStringConvertible {
        let file: String
        let frequency: Int
        let index: UInt8
        let channels: UInt8
        var testDescription: String { file }
    }

    /// ffprobe: profile=LC, sample_rate, channels (Fixtures/README.md).
    static let captured: [Captured] = [
        .init(file: "aac44m.asc", frequency: 44100, index: 4, channels: 1),
        .init(file: "aac48s.asc", frequency: 48000, index: 3, channels: 2),
        .init(file: "aac8m.asc", frequency: 8000, index: 11, channels: 1),
        .init(file: "aac96_51.asc", frequency: 96000, index: 0, channels: 6),
        .init(file: "main640.asc", frequency: 44100, index: 4, channels: 1),
        .init(file: "small.asc", frequency: 44100, index: 4, channels: 1),
    ]

    @Test(arguments: captured)
    func parsesCapturedConfig(_ expected: Captured) throws {
        let bytes = try Fixture.bytes(expected.file)
        // ffmpeg appends the 0x2B7 sync extension with sbrPresentFlag = 0 to every LC config.
        #expect(bytes.count == 5)
        let asc = try AAC.AudioSpecificConfig(parsing: ByteBuffer(bytes: bytes))
        #expect(asc.objectType == 2)
        #expect(asc.samplingFrequency == expected.frequency)
        #expect(asc.samplingFrequencyIndex == expected.index)
        #expect(asc.channelConfiguration == expected.channels)
        #expect(asc.extensionObjectType == nil)   // sbrPresentFlag = 0 is plain LC, as ffprobe says
        #expect(asc.extensionSamplingFrequency == nil)
        #expect(asc.frameLengthFlag == false)
        #expect(asc.codecString == "mp4a.40.2")
    }

    /// Round trip: the written form drops ffmpeg's no-op sync extension, so it is the 2-byte core.
    @Test(arguments: captured)
    func roundTripsCapturedConfig(_ expected: Captured) throws {
        let bytes = try Fixture.bytes(expected.file)
        let asc = try AAC.AudioSpecificConfig(parsing: ByteBuffer(bytes: bytes))
        var written = ByteBuffer()
        asc.write(to: &written)
        #expect(Array(written.readableBytesView) == Array(bytes.prefix(2)))
        #expect(try AAC.AudioSpecificConfig(parsing: written) == asc)
    }

    struct Vector: Sendable, CustomTestStringConvertible {
        let name: String
        let hex: String
        let expected: AAC.AudioSpecificConfig
        let codecString: String
        /// Bytes `write(to:)` must produce; nil when identical to `hex`.
        var written: String? = nil
        var testDescription: String { name }
    }

    /// Bit layouts from ISO/IEC 14496-3 1.6.2.1 / 1.6.5 (hex computed in Fixtures/README.md style).
    static let synthesized: [Vector] = [
        .init(name: "HE-AAC explicit hierarchical 24k->48k stereo", hex: "2b118800",
              expected: .init(objectType: 2, samplingFrequency: 24000, channelConfiguration: 2, extensionObjectType: 5, extensionSamplingFrequency: 48000),
              codecString: "mp4a.40.5"),
        .init(name: "HE-AAC 22.05k->44.1k (common encoder output)", hex: "2b920800",
              expected: .init(objectType: 2, samplingFrequency: 22050, channelConfiguration: 2, extensionObjectType: 5, extensionSamplingFrequency: 44100),
              codecString: "mp4a.40.5"),
        .init(name: "HE-AACv2 explicit hierarchical mono core", hex: "eb098800",
              expected: .init(objectType: 2, samplingFrequency: 24000, channelConfiguration: 1, extensionObjectType: 29, extensionSamplingFrequency: 48000),
              codecString: "mp4a.40.29"),
        .init(name: "backward-compatible SBR sync extension", hex: "131056e598",
              expected: .init(objectType: 2, samplingFrequency: 24000, channelConfiguration: 2, extensionObjectType: 5, extensionSamplingFrequency: 48000),
              codecString: "mp4a.40.5", written: "2b118800"),
        .init(name: "backward-compatible SBR + PS", hex: "130856e59d4880",
              expected: .init(objectType: 2, samplingFrequency: 24000, channelConfiguration: 1, extensionObjectType: 29, extensionSamplingFrequency: 48000),
              codecString: "mp4a.40.29", written: "eb098800"),
        .init(name: "escaped object type 42", hex: "f94640",
              expected: .init(objectType: 42, samplingFrequency: 48000, channelConfiguration: 2),
              codecString: "mp4a.40.42", written: "f94640"),
        .init(name: "explicit 11000 Hz", hex: "1780157c08",
              expected: .init(objectType: 2, samplingFrequency: 11000, channelConfiguration: 1),
              codecString: "mp4a.40.2"),
        .init(name: "960-sample frames", hex: "1194",
              expected: .init(objectType: 2, samplingFrequency: 48000, channelConfiguration: 2, frameLengthFlag: true),
              codecString: "mp4a.40.2"),
        .init(name: "AAC Main", hex: "0a10",
              expected: .init(objectType: 1, samplingFrequency: 44100, channelConfiguration: 2),
              codecString: "mp4a.40.1"),
        .init(name: "channel configuration 0 (PCE not decoded)", hex: "1200",
              expected: .init(objectType: 2, samplingFrequency: 44100, channelConfiguration: 0),
              codecString: "mp4a.40.2", written: "1200"),
    ]

    @Test(arguments: synthesized)
    func parsesSynthesized(_ vector: Vector) throws {
        let asc = try AAC.AudioSpecificConfig(parsing: ByteBuffer(hex: vector.hex))
        #expect(asc == vector.expected)
        #expect(asc.codecString == vector.codecString)
        var written = ByteBuffer()
        asc.write(to: &written)
        #expect(Array(written.readableBytesView) == [UInt8](hex: vector.written ?? vector.hex))
        #expect(try AAC.AudioSpecificConfig(parsing: written) == asc)
    }

    @Test func explicitFrequencyHasIndex15() throws {
        let asc = try AAC.AudioSpecificConfig(parsing: ByteBuffer(hex: "1780157c08"))
        #expect(asc.samplingFrequencyIndex == 15)
        #expect(AAC.AudioSpecificConfig(objectType: 2, samplingFrequency: 48000, channelConfiguration: 2).samplingFrequencyIndex == 3)
    }

    /// A stale index after mutation must not be written over the real rate.
    @Test func mutatedRateIsWrittenExplicitly() throws {
        var asc = try AAC.AudioSpecificConfig(parsing: ByteBuffer(hex: "1210"))
        asc.samplingFrequency = 12345
        var written = ByteBuffer()
        asc.write(to: &written)
        #expect(try AAC.AudioSpecificConfig(parsing: written).samplingFrequency == 12345)
    }

    struct Malformed: Sendable, CustomTestStringConvertible {
        let name: String
        let hex: String
        let error: CodecError
        var testDescription: String { name }
    }

    static let malformed: [Malformed] = [
        .init(name: "empty", hex: "", error: .truncated("audioObjectType")),
        .init(name: "cut in frequency index", hex: "12", error: .truncated("samplingFrequencyIndex")),
        .init(name: "cut early in explicit frequency", hex: "1780", error: .truncated("samplingFrequency")),
        .init(name: "cut in channel configuration", hex: "f946", error: .truncated("channelConfiguration")),
        .init(name: "cut in explicit frequency", hex: "178015", error: .truncated("samplingFrequency")),
        .init(name: "cut in escaped object type", hex: "f8", error: .truncated("audioObjectTypeExt")),
        .init(name: "null object type", hex: "0190", error: .invalid("audioObjectType 0 (null object)")),
        .init(name: "reserved frequency index 13", hex: "1690", error: .invalid("samplingFrequencyIndex 13 is reserved")),
        .init(name: "reserved frequency index 14", hex: "1710", error: .invalid("samplingFrequencyIndex 14 is reserved")),
        .init(name: "explicit frequency 0", hex: "1780000010", error: .invalid("samplingFrequencyIndex: explicit sampling frequency 0")),
        .init(name: "SBR inside SBR", hex: "2b1194", error: .invalid("audioObjectType 5 nested inside SBR/PS signalling")),
        .init(name: "reserved extension frequency index", hex: "2b1708", error: .invalid("extensionSamplingFrequencyIndex 14 is reserved")),
        .init(name: "hierarchical cut in extension frequency", hex: "2b11", error: .truncated("extensionSamplingFrequencyIndex")),
        .init(name: "hierarchical cut in GASpecificConfig", hex: "2b1188", error: .truncated("extensionFlag")),
        .init(name: "cut in coreCoderDelay", hex: "1192", error: .truncated("coreCoderDelay")),
        .init(name: "sync extension cut before sbrPresentFlag", hex: "131056e5", error: .truncated("sbrPresentFlag")),
    ]

    @Test(arguments: malformed)
    func rejectsMalformed(_ vector: Malformed) {
        #expect(throws: vector.error) {
            try AAC.AudioSpecificConfig(parsing: ByteBuffer(hex: vector.hex))
        }
    }
}
