import NIOCore

/// Namespace for H.264 / AVC bitstream types (ITU-T H.264, ISO/IEC 14496-10 and 14496-15).
public enum H264 {}

extension H264 {
    /// The four-byte Annex B start code written before every NAL unit.
    static let startCode: [UInt8] = [0, 0, 0, 1]

    /// Splits an AVCC (length-prefixed) access unit into NAL units (slices referencing the input, no copies).
    ///
    /// Layout per ISO/IEC 14496-15 5.3.4.2 (sample format): each NAL unit is preceded by a
    /// big-endian length of `nalLengthSize` bytes. Zero-length entries are skipped because they
    /// carry no NAL header and would otherwise become empty Annex B units.
    public static func nalUnits(avcc: ByteBuffer, nalLengthSize: Int) throws(CodecError) -> [ByteBuffer] {
        guard nalLengthSize == 1 || nalLengthSize == 2 || nalLengthSize == 4 else {
            throw .invalid("nalLengthSize \(nalLengthSize)")
        }
        var buffer = avcc
        var units: [ByteBuffer] = []
        while buffer.readableBytes > 0 {
            guard let length = readLength(&buffer, size: nalLengthSize) else { throw .truncated("NAL unit length") }
            guard length <= buffer.readableBytes else { throw .truncated("NAL unit") }
            if length == 0 { continue }
            guard let unit = buffer.readSlice(length: length) else { throw .truncated("NAL unit") }
            units.append(unit)
        }
        return units
    }

    static func readLength(_ buffer: inout ByteBuffer, size: Int) -> Int? {
        switch size {
        case 1: return buffer.readInteger(as: UInt8.self).map(Int.init)
        case 2: return buffer.readInteger(as: UInt16.self).map(Int.init)
        default: return buffer.readInteger(as: UInt32.self).map(Int.init)
        }
    }

    /// Annex B conversion (start codes 00 00 00 01) of an AVCC access unit, used later for MPEG-TS.
    ///
    /// The whole access unit is validated before anything is appended, so on error `into`
    /// is left untouched.
    public static func annexB(avcc: ByteBuffer, nalLengthSize: Int, into: inout ByteBuffer) throws(CodecError) {
        let units = try nalUnits(avcc: avcc, nalLengthSize: nalLengthSize)
        for var unit in units {
            into.writeBytes(startCode)
            into.writeBuffer(&unit)
        }
    }
}
