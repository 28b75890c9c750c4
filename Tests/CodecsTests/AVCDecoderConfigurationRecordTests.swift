import NIOCore
import Testing
import TestSupport
@testable import Codecs

@Suite struct AVCDecoderConfigurationRecordTests {
    struct Expected: Sendable, CustomTestStringConvertible {
        let file: String
        let profile: UInt8
        let compatibility: UInt8
        let level: UInt8
        let spsLength: Int
        let ppsLength: Int
        let codecString: String
        var testDescription: String { file }
    }

    /// Values from `ffprobe -show_streams` / trace_headers on the source FLVs (Fixtures/README.md).
    static let captured: [Expected] = [
        .init(file: "main640.avcc", profile: 100, compatibility: 0x00, level: 30, spsLength: 26, ppsLength: 4, codecString: "avc1.64001e"),
        .init(file: "base640.avcc", profile: 66, compatibility: 0xC0, level: 30, spsLength: 25, ppsLength: 4, codecString: "avc1.42c01e"),
        .init(file: "high1278.avcc", profile: 100, compatibility: 0x00, level: 31, spsLength: 27, ppsLength: 4, codecString: "avc1.64001f"),
        .init(file: "high1918.avcc", profile: 100, compatibility: 0x00, level: 40, spsLength: 31, ppsLength: 4, codecString: "avc1.640028"),
        .init(file: "h444.avcc", profile: 244, compatibility: 0x00, level: 13, spsLength: 24, ppsLength: 6, codecString: "avc1.f4000d"),
        .init(file: "h422.avcc", profile: 122, compatibility: 0x00, level: 13, spsLength: 25, ppsLength: 4, codecString: "avc1.7a000d"),
        .init(file: "hgray.avcc", profile: 100, compatibility: 0x00, level: 13, spsLength: 24, ppsLength: 4, codecString: "avc1.64000d"),
        .init(file: "hint.avcc", profile: 100, compatibility: 0x00, level: 30, spsLength: 26, ppsLength: 4, codecString: "avc1.64001e"),
        .init(file: "h10.avcc", profile: 110, compatibility: 0x00, level: 13, spsLength: 25, ppsLength: 4, codecString: "avc1.6e000d"),
        .init(file: "small.avcc", profile: 100, compatibility: 0x00, level: 11, spsLength: 25, ppsLength: 4, codecString: "avc1.64000b"),
    ]

    @Test(arguments: captured)
    func parsesCapturedRecord(_ expected: Expected) throws {
        let record = try H264.AVCDecoderConfigurationRecord(parsing: Fixture.buffer(expected.file))
        #expect(record.profileIndication == expected.profile)
        #expect(record.profileCompatibility == expected.compatibility)
        #expect(record.levelIndication == expected.level)
        #expect(record.nalLengthSize == 4)   // ffprobe: nal_length_size=4
        #expect(record.sequenceParameterSets.map(\.count) == [expected.spsLength])
        #expect(record.pictureParameterSets.map(\.count) == [expected.ppsLength])
        #expect(record.sequenceParameterSets[0].first.flatMap(H264.NALUnitType.init(header:)) == .sps)
        #expect(record.pictureParameterSets[0].first.flatMap(H264.NALUnitType.init(header:)) == .pps)
        #expect(record.codecString == expected.codecString)
        // The SPS copy of profile/level agrees with the record header.
        let sps = try H264.SequenceParameterSet(parsing: record.sequenceParameterSets[0])
        #expect(sps.profileIdc == expected.profile)
        #expect(sps.constraintFlags == expected.compatibility)
        #expect(sps.levelIdc == expected.level)
    }

    /// write() reproduces ffmpeg's bytes exactly, including the High-profile trailer it appends.
    @Test(arguments: captured)
    func writeIsByteExactForFFmpegRecords(_ expected: Expected) throws {
        let original = try Fixture.buffer(expected.file)
        let record = try H264.AVCDecoderConfigurationRecord(parsing: original)
        var written = ByteBuffer()
        record.write(to: &written)
        #expect(written == original)
        #expect(try H264.AVCDecoderConfigurationRecord(parsing: written) == record)
    }

    @Test func roundTripsConstructedRecord() throws {
        let record = H264.AVCDecoderConfigurationRecord(
            profileIndication: 77, profileCompatibility: 0x40, levelIndication: 31, nalLengthSize: 2,
            sequenceParameterSets: [[0x67, 0x4D, 0x40, 0x1F, 0x01], [0x67, 0x02]],
            pictureParameterSets: [[0x68, 0xEE], [0x68, 0x01], [0x68, 0x02]]
        )
        var buffer = ByteBuffer()
        record.write(to: &buffer)
        #expect(Array(buffer.readableBytesView) == [UInt8](hex: "014d401f" + "fd" + "e2" + "0005674d401f01" + "00026702" + "03" + "000268ee" + "00026801" + "00026802"))
        #expect(try H264.AVCDecoderConfigurationRecord(parsing: buffer) == record)
        #expect(record.codecString == "avc1.4d401f")
    }

    @Test func nalLengthSizeOneIsAccepted() throws {
        let record = try H264.AVCDecoderConfigurationRecord(parsing: ByteBuffer(hex: "01420014" + "fc" + "e1" + "00026742" + "01" + "000168"))
        #expect(record.nalLengthSize == 1)
    }

    @Test func trailingExtensionIsOptionalAndIgnored() throws {
        let full = try Fixture.bytes("main640.avcc")
        let withoutExtension = Array(full.dropLast(4))
        let garbageExtension = withoutExtension + [0x00, 0x01]
        let a = try H264.AVCDecoderConfigurationRecord(parsing: ByteBuffer(bytes: full))
        #expect(try H264.AVCDecoderConfigurationRecord(parsing: ByteBuffer(bytes: withoutExtension)) == a)
        #expect(try H264.AVCDecoderConfigurationRecord(parsing: ByteBuffer(bytes: garbageExtension)) == a)
    }

    @Test func parsingDoesNotConsumeTheCallersBuffer() throws {
        let buffer = try Fixture.buffer("small.avcc")
        _ = try H264.AVCDecoderConfigurationRecord(parsing: buffer)
        #expect(buffer.readableBytes == 44)
    }

    struct Malformed: Sendable, CustomTestStringConvertible {
        let name: String
        let hex: String
        let error: CodecError
        var testDescription: String { name }
    }

    static let malformed: [Malformed] = [
        .init(name: "empty", hex: "", error: .truncated("configurationVersion")),
        .init(name: "version 0", hex: "00", error: .invalid("configurationVersion 0")),
        .init(name: "version 2", hex: "02", error: .invalid("configurationVersion 2")),
        .init(name: "cut before profile", hex: "01", error: .truncated("AVCProfileIndication")),
        .init(name: "cut before compatibility", hex: "0164", error: .truncated("profile_compatibility")),
        .init(name: "cut before level", hex: "016400", error: .truncated("AVCLevelIndication")),
        .init(name: "cut before length size", hex: "0164001f", error: .truncated("lengthSizeMinusOne")),
        .init(name: "3-byte NAL lengths", hex: "0164001ffee1000267640100026800", error: .invalid("lengthSizeMinusOne 2 (3-byte NAL lengths)")),
        .init(name: "cut before SPS count", hex: "0164001fff", error: .truncated("numOfSequenceParameterSets")),
        .init(name: "zero SPS", hex: "0164001fffe001000268ee", error: .invalid("numOfSequenceParameterSets 0")),
        .init(name: "cut in SPS length", hex: "0164001fffe100", error: .truncated("sequenceParameterSetLength")),
        .init(name: "SPS length past end", hex: "0164001fffe1001a6764", error: .truncated("sequenceParameterSet")),
        .init(name: "SPS length 0xFFFF past end", hex: "0164001fffe1ffff67", error: .truncated("sequenceParameterSet")),
        .init(name: "empty SPS", hex: "0164001fffe10000", error: .invalid("empty sequenceParameterSet")),
        .init(name: "second SPS missing", hex: "0164001fffe200026764", error: .truncated("sequenceParameterSetLength")),
        .init(name: "cut before PPS count", hex: "0164001fffe100026764", error: .truncated("numOfPictureParameterSets")),
        .init(name: "zero PPS", hex: "0164001fffe10002676400", error: .invalid("numOfPictureParameterSets 0")),
        .init(name: "cut in PPS length", hex: "0164001fffe1000267640100", error: .truncated("pictureParameterSetLength")),
        .init(name: "PPS length past end", hex: "0164001fffe10002676401000468ee", error: .truncated("pictureParameterSet")),
        .init(name: "empty PPS", hex: "0164001fffe100026764010000", error: .invalid("empty pictureParameterSet")),
        .init(name: "255 PPS announced, 1 present", hex: "0164001fffe100026764ff000268ee", error: .truncated("pictureParameterSetLength")),
    ]

    @Test(arguments: malformed)
    func rejectsMalformed(_ vector: Malformed) {
        #expect(throws: vector.error) {
            try H264.AVCDecoderConfigurationRecord(parsing: ByteBuffer(hex: vector.hex))
        }
    }

    /// Every cut of a real record before the end of its PPS throws a truncation; later cuts
    /// only lose the optional trailer.
    @Test func everyPrefixOfCapturedRecord() throws {
        let full = try Fixture.bytes("main640.avcc")
        let expected = try H264.AVCDecoderConfigurationRecord(parsing: ByteBuffer(bytes: full))
        let endOfPPS = full.count - 4
        for length in 0..<full.count {
            let prefix = ByteBuffer(bytes: full.prefix(length))
            if length < endOfPPS {
                do {
                    _ = try H264.AVCDecoderConfigurationRecord(parsing: prefix)
                    Issue.record("prefix of \(length) bytes parsed")
                } catch {
                    guard case .truncated = error else {
                        Issue.record("prefix of \(length) bytes: \(error)")
                        continue
                    }
                }
            } else {
                #expect(try H264.AVCDecoderConfigurationRecord(parsing: prefix) == expected)
            }
        }
    }
}
