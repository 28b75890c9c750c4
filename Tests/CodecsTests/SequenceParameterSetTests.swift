import NIOCore
import Testing
@testable import Codecs

@Suite struct SequenceParameterSetTests {
    struct Expected: Sendable, CustomTestStringConvertible {
        let file: String
        let profile: UInt8
        let width: Int
        let height: Int
        let frameRate: Double
        var chroma: UInt32 = 1
        var bitDepth = 8
        var frameMbsOnly = true
        var testDescription: String { file }
    }

    /// width/height/r_frame_rate from `ffprobe -show_streams`; chroma_format_idc, bit depth and
    /// frame_mbs_only_flag from `-bsf:v trace_headers` (Fixtures/README.md).
    static let captured: [Expected] = [
        .init(file: "main640.avcc", profile: 100, width: 640, height: 360, frameRate: 30),
        .init(file: "base640.avcc", profile: 66, width: 640, height: 360, frameRate: 30),
        .init(file: "high1278.avcc", profile: 100, width: 1278, height: 718, frameRate: 25),
        .init(file: "high1918.avcc", profile: 100, width: 1918, height: 1080, frameRate: 30),
        .init(file: "h444.avcc", profile: 244, width: 352, height: 288, frameRate: 25, chroma: 3),
        .init(file: "h422.avcc", profile: 122, width: 352, height: 288, frameRate: 25, chroma: 2),
        .init(file: "hgray.avcc", profile: 100, width: 352, height: 288, frameRate: 25, chroma: 0),
        .init(file: "hint.avcc", profile: 100, width: 720, height: 572, frameRate: 25, frameMbsOnly: false),
        .init(file: "h10.avcc", profile: 110, width: 320, height: 240, frameRate: 25, bitDepth: 10),
        .init(file: "small.avcc", profile: 100, width: 160, height: 90, frameRate: 30),
        .init(file: "sps_scaling.sps", profile: 100, width: 320, height: 240, frameRate: 25),
        .init(file: "sps_scaling_crop.sps", profile: 100, width: 318, height: 236, frameRate: 25),
    ]

    static func spsBytes(_ file: String) throws -> [UInt8] {
        if file.hasSuffix(".sps") { return try Fixture.bytes(file) }
        return try H264.AVCDecoderConfigurationRecord(parsing: Fixture.buffer(file)).sequenceParameterSets[0]
    }

    @Test(arguments: captured)
    func parsesCapturedSPS(_ expected: Expected) throws {
        let nal = try Self.spsBytes(expected.file)
        // Every captured SPS contains 00 00 03 (the VUI timing fields), so EPB removal is always exercised.
        #expect(nal.indices.dropLast(2).contains { nal[$0] == 0 && nal[$0 + 1] == 0 && nal[$0 + 2] == 3 })
        let sps = try H264.SequenceParameterSet(parsing: nal)
        #expect(sps.profileIdc == expected.profile)
        #expect(sps.id == 0)
        #expect(sps.width == expected.width)
        #expect(sps.height == expected.height)
        #expect(sps.frameRate == expected.frameRate)
        #expect(sps.chromaFormatIdc == expected.chroma)
        #expect(sps.bitDepthLuma == expected.bitDepth)
        #expect(sps.bitDepthChroma == expected.bitDepth)
        #expect(sps.frameMbsOnly == expected.frameMbsOnly)
    }

    @Test func baselineConstraintFlagsAndLevel() throws {
        let sps = try H264.SequenceParameterSet(parsing: Self.spsBytes("base640.avcc"))
        #expect(sps.constraintFlags == 0xC0)   // constraint_set0 + set1: Constrained Baseline
        #expect(sps.levelIdc == 30)
    }

    // MARK: synthesized (expected values from 7.4.2.1.1 crop-unit formulas)

    @Test func separateColourPlaneUsesUnitCropAndConsumesTheFlag() throws {
        var b = SPSBuilder()
        b.profileIdc = 244
        b.chromaFormatIdc = 3
        b.separateColourPlane = true
        b.crop = (1, 2, 3, 4)
        let sps = try H264.SequenceParameterSet(parsing: b.nal)
        #expect(sps.chromaFormatIdc == 3)
        #expect(sps.width == 160 - 3)      // ChromaArrayType 0: CropUnitX = 1
        #expect(sps.height == 144 - 7)     // CropUnitY = 1
        #expect(sps.frameRate == 30)
    }

    @Test func interlaced422Crop() throws {
        var b = SPSBuilder()
        b.profileIdc = 122
        b.chromaFormatIdc = 2
        b.frameMbsOnly = false
        b.widthInMbs = 45
        b.heightInMapUnits = 18
        b.crop = (1, 0, 1, 1)
        let sps = try H264.SequenceParameterSet(parsing: b.nal)
        #expect(sps.width == 720 - 2)            // SubWidthC 2
        #expect(sps.height == 18 * 2 * 16 - 4)   // SubHeightC 1 x (2 - frame_mbs_only) = 2 per unit
        #expect(sps.frameMbsOnly == false)
    }

    @Test func monochromeCropUnitsAreOne() throws {
        var b = SPSBuilder()
        b.chromaFormatIdc = 0
        b.crop = (0, 3, 0, 5)
        let sps = try H264.SequenceParameterSet(parsing: b.nal)
        #expect(sps.width == 157)
        #expect(sps.height == 139)
    }

    @Test func interlaced420CropUnitIsFourRows() throws {
        var b = SPSBuilder()
        b.frameMbsOnly = false
        b.crop = (0, 0, 0, 1)
        let sps = try H264.SequenceParameterSet(parsing: b.nal)
        #expect(sps.height == 9 * 32 - 4)
    }

    @Test func scalingListsFor444HaveTwelveEntries() throws {
        var b = SPSBuilder()
        b.profileIdc = 244
        b.chromaFormatIdc = 3
        // List 11 (8x8 Cr) only exists for 4:4:4: a parser reading 8 lists would misalign.
        b.scalingLists = [0: [-8], 8: [4] + Array(repeating: 1, count: 63), 11: [2, -10]]
        b.widthInMbs = 20
        b.heightInMapUnits = 15
        let sps = try H264.SequenceParameterSet(parsing: b.nal)
        #expect(sps.width == 320)
        #expect(sps.height == 240)
        #expect(sps.frameRate == 30)
    }

    @Test func mainProfileHasNoChromaFields() throws {
        var b = SPSBuilder()
        b.profileIdc = 77
        b.chromaFormatIdc = 3   // ignored by the builder for non-high profiles, as in the spec
        let sps = try H264.SequenceParameterSet(parsing: b.nal)
        #expect(sps.chromaFormatIdc == 1)
        #expect(sps.width == 160)
    }

    @Test func pocType1AndFullVUIBeforeTiming() throws {
        var b = SPSBuilder()
        b.pocType = 1
        b.pocCycle = [1, -1, 7]
        b.vui = .init(extendedSAR: (4, 3), overscan: true, colourDescription: true, chromaLoc: true, timing: (1001, 60000))
        let sps = try H264.SequenceParameterSet(parsing: b.nal)
        #expect(sps.frameRate == 60000.0 / 2002.0)
        #expect(sps.width == 160)
    }

    @Test func frameRateNilWithoutTiming() throws {
        var noVUI = SPSBuilder()
        noVUI.vui = nil
        #expect(try H264.SequenceParameterSet(parsing: noVUI.nal).frameRate == nil)
        var noTiming = SPSBuilder()
        noTiming.vui = .init(timing: nil)
        #expect(try H264.SequenceParameterSet(parsing: noTiming.nal).frameRate == nil)
        var zeroTick = SPSBuilder()
        zeroTick.vui = .init(timing: (0, 50))
        #expect(try H264.SequenceParameterSet(parsing: zeroTick.nal).frameRate == nil)
    }

    @Test func subsetSPSIsAccepted() throws {
        var b = SPSBuilder()
        b.header = 0x6F
        b.profileIdc = 118
        #expect(try H264.SequenceParameterSet(parsing: b.nal).profileIdc == 118)
    }

    @Test func parsesLargestLegalId() throws {
        var b = SPSBuilder()
        b.id = 31
        #expect(try H264.SequenceParameterSet(parsing: b.nal).id == 31)
    }

    // MARK: malformed

    struct Malformed: Sendable, CustomTestStringConvertible {
        let name: String
        let nal: [UInt8]
        let error: CodecError
        var testDescription: String { name }
    }

    static func built(_ change: (inout SPSBuilder) -> Void) -> [UInt8] {
        var b = SPSBuilder()
        b.vui = .init()
        change(&b)
        return b.nal
    }

    static let malformed: [Malformed] = [
        .init(name: "empty", nal: [], error: .truncated("NAL header")),
        .init(name: "PPS header", nal: [0x68, 0xEE], error: .invalid("NAL unit type 8 is not an SPS")),
        .init(name: "forbidden bit", nal: [0xE7, 0x64], error: .invalid("forbidden_zero_bit set")),
        .init(name: "header only", nal: [0x67], error: .truncated("profile_idc")),
        .init(name: "cut in constraint flags", nal: [0x67, 0x64], error: .truncated("constraint_set_flags")),
        .init(name: "cut in level", nal: [0x67, 0x64, 0x00], error: .truncated("level_idc")),
        .init(name: "cut before id", nal: [0x67, 0x64, 0x00, 0x1E], error: .truncated("seq_parameter_set_id")),
        // main640's SPS cut after the first byte of ue fields: id, chroma, depths, flags fit; the next ue does not.
        .init(name: "cut before log2_max_frame_num", nal: [0x67, 0x64, 0x00, 0x1E, 0xAC], error: .truncated("log2_max_frame_num_minus4")),
        .init(name: "32 leading zeros", nal: [0x67, 0x64, 0x00, 0x1E, 0x00, 0x00, 0x03, 0x00, 0x00, 0x80], error: .invalid("seq_parameter_set_id: exp-Golomb code longer than 32 bits")),
        .init(name: "all-zero payload", nal: [0x67] + [UInt8](repeating: 0, count: 64), error: .invalid("seq_parameter_set_id: exp-Golomb code longer than 32 bits")),
        .init(name: "id 32", nal: built { $0.id = 32 }, error: .invalid("seq_parameter_set_id 32")),
        .init(name: "chroma_format_idc 4", nal: built { $0.chromaFormatIdc = 4 }, error: .invalid("chroma_format_idc 4")),
        .init(name: "luma depth 15", nal: built { $0.bitDepthLumaMinus8 = 7 }, error: .invalid("bit_depth_luma_minus8 7")),
        .init(name: "chroma depth 15", nal: built { $0.bitDepthChromaMinus8 = 7 }, error: .invalid("bit_depth_chroma_minus8 7")),
        .init(name: "delta_scale 128", nal: built { $0.scalingLists = [0: [128]] }, error: .invalid("delta_scale 128")),
        .init(name: "scaling list cut", nal: Array(built { $0.scalingLists = [6: Array(repeating: 1, count: 64)] }.prefix(8)), error: .truncated("delta_scale")),
        .init(name: "log2_max_frame_num_minus4 13", nal: built { $0.log2MaxFrameNumMinus4 = 13 }, error: .invalid("log2_max_frame_num_minus4 13")),
        .init(name: "poc type 3", nal: built { $0.pocType = 3 }, error: .invalid("pic_order_cnt_type 3")),
        .init(name: "poc lsb 13", nal: built { $0.log2MaxPocLsbMinus4 = 13 }, error: .invalid("log2_max_pic_order_cnt_lsb_minus4 13")),
        .init(name: "poc cycle 256", nal: built { $0.pocType = 1; $0.pocCycle = Array(repeating: 0, count: 256) }, error: .invalid("num_ref_frames_in_pic_order_cnt_cycle 256")),
        .init(name: "width 65535 MBs", nal: built { $0.widthInMbs = 65536 }, error: .invalid("picture size 65536x9 macroblocks")),
        .init(name: "crop larger than picture", nal: built { $0.crop = (40, 40, 0, 0) }, error: .invalid("frame cropping removes the whole 160x144 picture")),
        .init(name: "crop offset 2^32-2", nal: built { $0.crop = (0, 0, 0, 4_294_967_294) }, error: .invalid("frame cropping removes the whole 160x144 picture")),
        .init(name: "cut in num_units_in_tick", nal: built { $0.truncateInTiming = 0 }, error: .truncated("num_units_in_tick")),
        .init(name: "cut in time_scale", nal: built { $0.truncateInTiming = 1 }, error: .truncated("time_scale")),
        .init(name: "cut in SAR", nal: Array(built { $0.vui = .init(extendedSAR: (1, 1)) }.prefix(12)), error: .truncated("sar_width/sar_height")),
    ]

    @Test(arguments: malformed)
    func rejectsMalformed(_ vector: Malformed) {
        #expect(throws: vector.error) {
            try H264.SequenceParameterSet(parsing: vector.nal)
        }
    }

    /// Every cut of a captured SPS either throws a truncation or (once time_scale is inside) parses fully.
    @Test(arguments: ["main640.avcc", "hint.avcc", "h444.avcc", "sps_scaling.sps"])
    func everyPrefixOfCapturedSPS(_ file: String) throws {
        let nal = try Self.spsBytes(file)
        let full = try H264.SequenceParameterSet(parsing: nal)
        var firstSuccess: Int?
        for length in 0..<nal.count {
            do {
                let sps = try H264.SequenceParameterSet(parsing: Array(nal.prefix(length)))
                #expect(sps == full)
                if firstSuccess == nil { firstSuccess = length }
            } catch {
                #expect(firstSuccess == nil, "prefix \(length) failed after a shorter prefix parsed")
                guard case .truncated = error else {
                    Issue.record("prefix \(length): \(error)")
                    continue
                }
            }
        }
        // Only the bytes after time_scale (fixed_frame_rate_flag, HRD, bitstream_restriction) may go missing.
        #expect(nal.count - (firstSuccess ?? nal.count) <= 4)
    }

    @Test func emulationPreventionRemoval() {
        #expect(H264.removingEmulationPrevention([0, 0, 3, 1]) == [0, 0, 1])
        #expect(H264.removingEmulationPrevention([0, 0, 3, 0, 0, 3]) == [0, 0, 0, 0])
        #expect(H264.removingEmulationPrevention([0, 0, 3, 3]) == [0, 0, 3])
        #expect(H264.removingEmulationPrevention([0, 3, 0, 3]) == [0, 3, 0, 3])
        #expect(H264.removingEmulationPrevention([]) == [])
    }
}
