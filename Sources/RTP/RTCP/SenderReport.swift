/// SR (RFC 3550 6.4.1): the sender's SSRC, its wall clock (NTP) and RTP clock at one instant, its packet and
/// octet counts, then reception report blocks.
public struct SenderReport: Sendable, Equatable {
    public var ssrc: UInt32
    /// NTP timestamp: seconds since 1900 in the high 32 bits, fraction in the low 32.
    public var ntpTimestamp: UInt64
    public var rtpTimestamp: UInt32
    public var packetCount: UInt32
    public var octetCount: UInt32
    public var reports: [ReceptionReport]

    public init(ssrc: UInt32, ntpTimestamp: UInt64, rtpTimestamp: UInt32, packetCount: UInt32, octetCount: UInt32,
                reports: [ReceptionReport] = []) {
        (self.ssrc, self.ntpTimestamp, self.rtpTimestamp) = (ssrc, ntpTimestamp, rtpTimestamp)
        (self.packetCount, self.octetCount, self.reports) = (packetCount, octetCount, reports)
    }

    init(count: UInt8, body b: ArraySlice<UInt8>) throws(RTPError) {
        let s = b.startIndex
        guard b.count >= 24 + Int(count) * ReceptionReport.size else { throw .malformed(packetType: RTCPPacket.senderReportType) }
        ssrc = RTCP.u32(b, s)
        ntpTimestamp = UInt64(RTCP.u32(b, s + 4)) << 32 | UInt64(RTCP.u32(b, s + 8))
        rtpTimestamp = RTCP.u32(b, s + 12)
        packetCount = RTCP.u32(b, s + 16)
        octetCount = RTCP.u32(b, s + 20)
        reports = (0..<Int(count)).map { ReceptionReport(b[(s + 24 + $0 * 24)...]) }
    }

    func write(to out: inout [UInt8]) {
        let blocks = reports.prefix(31)
        RTCP.header(count: UInt8(blocks.count), type: RTCPPacket.senderReportType, bodyLength: 24 + 24 * blocks.count, to: &out)
        RTCP.append(ssrc, to: &out)
        RTCP.append(UInt32(ntpTimestamp >> 32), to: &out)
        RTCP.append(UInt32(ntpTimestamp & 0xFFFF_FFFF), to: &out)
        for v in [rtpTimestamp, packetCount, octetCount] { RTCP.append(v, to: &out) }
        for r in blocks { r.write(to: &out) }
    }
}

/// RR (RFC 3550 6.4.2): reception report blocks from a receiver.
public struct ReceiverReport: Sendable, Equatable {
    public var ssrc: UInt32
    public var reports: [ReceptionReport]

    public init(ssrc: UInt32, reports: [ReceptionReport] = []) {
        self.ssrc = ssrc
        self.reports = reports
    }

    init(count: UInt8, body b: ArraySlice<UInt8>) throws(RTPError) {
        let s = b.startIndex
        guard b.count >= 4 + Int(count) * ReceptionReport.size else { throw .malformed(packetType: RTCPPacket.receiverReportType) }
        ssrc = RTCP.u32(b, s)
        reports = (0..<Int(count)).map { ReceptionReport(b[(s + 4 + $0 * 24)...]) }
    }

    func write(to out: inout [UInt8]) {
        let blocks = reports.prefix(31)
        RTCP.header(count: UInt8(blocks.count), type: RTCPPacket.receiverReportType, bodyLength: 4 + 24 * blocks.count, to: &out)
        RTCP.append(ssrc, to: &out)
        for r in blocks { r.write(to: &out) }
    }
}
