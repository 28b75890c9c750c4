/// RTCP packets (RFC 3550 section 6, RFC 4585 for feedback, RFC 5104 for FIR). A compound packet is a
/// sequence of these, each with the common header:
///
///      0                   1                   2                   3
///      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |V=2|P| count/FMT |      PT       |   length (32-bit words - 1)   |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///
/// Browsers send reduced-size RTCP (RFC 5506, `a=rtcp-rsize`), so a compound packet need not start with a
/// report. Packet types this codec does not model (REMB, APP, XR...) are kept as ``unknown`` and written back
/// unchanged.
public enum RTCPPacket: Sendable, Equatable {
    case senderReport(SenderReport)
    case receiverReport(ReceiverReport)
    case sourceDescription(SourceDescription)
    case goodbye(Goodbye)
    case nack(GenericNACK)
    case pictureLoss(PictureLossIndication)
    case fullIntraRequest(FullIntraRequest)
    case transportFeedback(TransportFeedback)
    /// Any other type or feedback format (transport-cc, REMB, APP...), whole, header included.
    case unknown(packetType: UInt8, format: UInt8, bytes: [UInt8])

    public static let senderReportType: UInt8 = 200
    public static let receiverReportType: UInt8 = 201
    public static let sourceDescriptionType: UInt8 = 202
    public static let goodbyeType: UInt8 = 203
    /// RFC 4585 6.1: transport-layer feedback (FMT 1 generic NACK, 15 transport-cc).
    public static let transportFeedbackType: UInt8 = 205
    /// RFC 4585 6.1: payload-specific feedback (FMT 1 PLI, 4 FIR, 15 application layer: REMB).
    public static let payloadFeedbackType: UInt8 = 206

    /// Parses a compound packet (an SRTCP payload after unprotecting).
    public static func parseCompound(_ b: [UInt8]) throws(RTPError) -> [RTCPPacket] {
        var out: [RTCPPacket] = []
        var i = 0
        while i < b.count {
            guard i + 4 <= b.count else { throw .truncated(needed: 4, available: b.count - i) }
            guard b[i] >> 6 == 2 else { throw .badVersion(b[i] >> 6) }
            let length = 4 * (Int(b[i + 2]) << 8 | Int(b[i + 3]) + 1)
            guard i + length <= b.count else { throw .badLength(declared: length, available: b.count - i) }
            var packet = b[i..<(i + length)]
            if b[i] & 0x20 != 0 {
                // Padding only on the last packet of a compound (RFC 3550 6.4.1): its last byte counts it.
                let pad = Int(packet.last!)
                guard i + length == b.count, pad > 0, pad <= length - 4 else { throw .badPadding(UInt8(truncatingIfNeeded: pad)) }
                packet = packet.dropLast(pad)
            }
            out.append(try parse(packet))
            i += length
        }
        guard !out.isEmpty else { throw .empty }
        return out
    }

    static func parse(_ p: ArraySlice<UInt8>) throws(RTPError) -> RTCPPacket {
        let s = p.startIndex
        let count = p[s] & 0x1F
        let type = p[s + 1]
        let body = p[(s + 4)...]
        switch (type, count) {
        case (senderReportType, _): return .senderReport(try SenderReport(count: count, body: body))
        case (receiverReportType, _): return .receiverReport(try ReceiverReport(count: count, body: body))
        case (sourceDescriptionType, _): return .sourceDescription(try SourceDescription(count: count, body: body))
        case (goodbyeType, _): return .goodbye(try Goodbye(count: count, body: body))
        case (transportFeedbackType, GenericNACK.format): return .nack(try GenericNACK(body: body))
        case (transportFeedbackType, TransportFeedback.format): return .transportFeedback(try TransportFeedback(body: body))
        case (payloadFeedbackType, PictureLossIndication.format): return .pictureLoss(try PictureLossIndication(body: body))
        case (payloadFeedbackType, FullIntraRequest.format): return .fullIntraRequest(try FullIntraRequest(body: body))
        default:
            // Kept as it came, but standing alone: its padding (already cut off by parseCompound) no longer
            // announced, and the rest zero-filled to whole words with the length to match, so that it is written
            // back as a valid packet wherever it goes in a compound.
            var bytes = Array(p)
            if bytes[0] & 0x20 != 0 {
                bytes[0] &= ~0x20
                while bytes.count % 4 != 0 { bytes.append(0) }
                let words = bytes.count / 4 - 1
                (bytes[2], bytes[3]) = (UInt8(words >> 8 & 0xFF), UInt8(words & 0xFF))
            }
            return .unknown(packetType: type, format: count, bytes: bytes)
        }
    }

    /// Writes packets back to back as one compound packet.
    public static func writeCompound(_ packets: [RTCPPacket]) -> [UInt8] {
        var out: [UInt8] = []
        for p in packets { p.write(to: &out) }
        return out
    }

    public func write(to out: inout [UInt8]) {
        switch self {
        case .senderReport(let r): r.write(to: &out)
        case .receiverReport(let r): r.write(to: &out)
        case .sourceDescription(let d): d.write(to: &out)
        case .goodbye(let g): g.write(to: &out)
        case .nack(let n): n.write(to: &out)
        case .pictureLoss(let p): p.write(to: &out)
        case .fullIntraRequest(let f): f.write(to: &out)
        case .transportFeedback(let t): t.write(to: &out)
        case .unknown(_, _, let bytes): out += bytes
        }
    }
}

/// Helpers shared by the RTCP packet types.
enum RTCP {
    static func u32(_ b: ArraySlice<UInt8>, _ i: Int) -> UInt32 {
        UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
    }

    static func append(_ v: UInt32, to out: inout [UInt8]) {
        out += [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
    }

    /// Writes a common header for a body of `bodyLength` bytes (a multiple of 4).
    static func header(count: UInt8, type: UInt8, bodyLength: Int, to out: inout [UInt8]) {
        let words = (bodyLength + 4) / 4 - 1
        out += [0x80 | (count & 0x1F), type, UInt8(words >> 8 & 0xFF), UInt8(words & 0xFF)]
    }
}
