@testable import Codecs

/// Builds SPS NAL units field by field (ITU-T H.264 7.3.2.1.1) for cases x264 never emits.
/// Expected values in the tests are computed from the spec formulas, not from this builder.
struct SPSBuilder {
    var header: UInt8 = 0x67
    var profileIdc: UInt32 = 100
    var constraintFlags: UInt32 = 0
    var levelIdc: UInt32 = 30
    var id: UInt32 = 0
    var chromaFormatIdc: UInt32 = 1
    var separateColourPlane = false
    var bitDepthLumaMinus8: UInt32 = 0
    var bitDepthChromaMinus8: UInt32 = 0
    /// Per list index: nil = absent, else the delta_scale values to write.
    var scalingLists: [Int: [Int32]]? = nil
    var log2MaxFrameNumMinus4: UInt32 = 0
    var pocType: UInt32 = 0
    var log2MaxPocLsbMinus4: UInt32 = 2
    var pocCycle: [Int32] = []
    var widthInMbs: UInt32 = 10
    var heightInMapUnits: UInt32 = 9
    var frameMbsOnly = true
    var crop: (UInt32, UInt32, UInt32, UInt32)? = nil
    var vui: VUI? = VUI()
    /// Stop writing after this many VUI timing fields (0...2) to produce a truncated SPS.
    var truncateInTiming: Int? = nil

    struct VUI {
        var extendedSAR: (UInt32, UInt32)? = nil
        var overscan = false
        var colourDescription = false
        var chromaLoc = false
        var timing: (UInt32, UInt32)? = (1, 60)
    }

    var nal: [UInt8] {
        var w = BitWriter()
        w.write(profileIdc, bits: 8)
        w.write(constraintFlags, bits: 8)
        w.write(levelIdc, bits: 8)
        w.ue(id)
        if H264.SequenceParameterSet.highProfiles.contains(UInt8(profileIdc)) {
            w.ue(chromaFormatIdc)
            if chromaFormatIdc == 3 { w.write(separateColourPlane) }
            w.ue(bitDepthLumaMinus8)
            w.ue(bitDepthChromaMinus8)
            w.write(false)
            if let scalingLists {
                w.write(true)
                for i in 0..<(chromaFormatIdc == 3 ? 12 : 8) {
                    if let deltas = scalingLists[i] {
                        w.write(true)
                        for d in deltas { w.se(d) }
                    } else {
                        w.write(false)
                    }
                }
            } else {
                w.write(false)
            }
        }
        w.ue(log2MaxFrameNumMinus4)
        w.ue(pocType)
        if pocType == 0 { w.ue(log2MaxPocLsbMinus4) }
        if pocType == 1 {
            w.write(false)
            w.se(-2)
            w.se(3)
            w.ue(UInt32(pocCycle.count))
            for offset in pocCycle { w.se(offset) }
        }
        w.ue(4)
        w.write(false)
        w.ue(widthInMbs &- 1)
        w.ue(heightInMapUnits &- 1)
        w.write(frameMbsOnly)
        if !frameMbsOnly { w.write(true) }
        w.write(true)
        if let crop {
            w.write(true)
            w.ue(crop.0); w.ue(crop.1); w.ue(crop.2); w.ue(crop.3)
        } else {
            w.write(false)
        }
        if let vui {
            w.write(true)
            if let sar = vui.extendedSAR {
                w.write(true); w.write(255, bits: 8); w.write(sar.0, bits: 16); w.write(sar.1, bits: 16)
            } else {
                w.write(false)
            }
            w.write(vui.overscan)
            if vui.overscan { w.write(true) }
            w.write(vui.colourDescription)
            if vui.colourDescription {
                w.write(5, bits: 3); w.write(false); w.write(true)
                w.write(1, bits: 8); w.write(1, bits: 8); w.write(1, bits: 8)
            }
            w.write(vui.chromaLoc)
            if vui.chromaLoc { w.ue(1); w.ue(1) }
            if let timing = vui.timing {
                w.write(true)
                if let cut = truncateInTiming {
                    if cut >= 1 { w.write(timing.0, bits: 32) }
                    return Self.wrap(header, w.bytes)   // zero padding < 8 bits, no stop bit
                }
                w.write(timing.0, bits: 32)
                w.write(timing.1, bits: 32)
                w.write(true)
            } else {
                w.write(false)
            }
            w.write(false); w.write(false); w.write(false); w.write(false)
        } else {
            w.write(false)
        }
        w.write(true)   // rbsp_stop_one_bit
        return Self.wrap(header, w.bytes)
    }

    /// Adds the NAL header and emulation prevention, so the parser's EPB removal is exercised too.
    static func wrap(_ header: UInt8, _ rbsp: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [header]
        var zeros = 0
        for byte in rbsp {
            if zeros >= 2 && byte <= 3 {
                out.append(3)
                zeros = 0
            }
            out.append(byte)
            zeros = byte == 0 ? zeros + 1 : 0
        }
        return out
    }
}

extension BitWriter {
    mutating func ue(_ value: UInt32) {
        let v = UInt64(value) + 1
        let length = 64 - v.leadingZeroBitCount
        write(0, bits: length - 1)
        if length > 32 {
            write(UInt32(v >> 32), bits: length - 32)
            write(UInt32(truncatingIfNeeded: v), bits: 32)
        } else {
            write(UInt32(v), bits: length)
        }
    }

    mutating func se(_ value: Int32) {
        ue(value > 0 ? UInt32(2 * Int64(value) - 1) : UInt32(-2 * Int64(value)))
    }
}
