import NIOCore

/// PES packet header with PTS and optional DTS, ISO/IEC 13818-1 2.4.3.6 and 2.4.3.7.
struct PESHeader: Sendable {
    /// Timestamps are 33-bit counters; masking makes negative or huge inputs wrap as the clock does.
    static let timestampMask: Int64 = 0x1_FFFF_FFFF
    static let videoStreamID: UInt8 = 0xE0
    static let audioStreamID: UInt8 = 0xC0
    /// Bytes after PES_packet_length that count towards it: flags (2) + header_data_length (1).
    static let fixedTail = 3

    var streamID: UInt8
    var pts: Int64
    var dts: Int64?
    /// PES_packet_length; 0 means unbounded, allowed only for video (2.4.3.7).
    var packetLength: UInt16
    var dataAlignment: Bool

    /// Size of everything after PES_packet_length up to the payload.
    var tailLength: Int { Self.fixedTail + (dts == nil ? 5 : 10) }

    func write(to out: inout ByteBuffer) {
        out.writeBytes([0x00, 0x00, 0x01, streamID])
        out.writeInteger(packetLength)
        // '10' marker, not scrambled, no priority, original/copy 0.
        out.writeInteger(UInt8(dataAlignment ? 0x84 : 0x80))
        out.writeInteger(UInt8(dts == nil ? 0x80 : 0xC0))
        out.writeInteger(UInt8(dts == nil ? 5 : 10))
        if let dts {
            Self.writeTimestamp(pts, prefix: 0b0011, to: &out)
            Self.writeTimestamp(dts, prefix: 0b0001, to: &out)
        } else {
            Self.writeTimestamp(pts, prefix: 0b0010, to: &out)
        }
    }

    /// The 5-byte 33-bit timestamp layout with marker bits shared by PTS and DTS (2.4.3.7).
    static func writeTimestamp(_ value: Int64, prefix: UInt8, to out: inout ByteBuffer) {
        let ts = UInt64(value & timestampMask)
        out.writeInteger((prefix << 4) | UInt8(truncatingIfNeeded: (ts >> 29) & 0x0E) | 1)
        out.writeInteger(UInt8(truncatingIfNeeded: ts >> 22))
        out.writeInteger(UInt8(truncatingIfNeeded: (ts >> 14) & 0xFE) | 1)
        out.writeInteger(UInt8(truncatingIfNeeded: ts >> 7))
        out.writeInteger(UInt8(truncatingIfNeeded: (ts << 1) & 0xFE) | 1)
    }
}
