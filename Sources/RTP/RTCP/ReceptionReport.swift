/// A reception report block (RFC 3550 6.4.1), 24 bytes, in sender and receiver reports:
///
///     | SSRC of source | fraction lost (8) | cumulative lost (24) | extended highest sequence number |
///     | interarrival jitter | last SR (LSR) | delay since last SR (DLSR) |
public struct ReceptionReport: Sendable, Equatable {
    public var ssrc: UInt32
    /// Lost since the last report, as a fraction of 256.
    public var fractionLost: UInt8
    /// Signed 24 bits: duplicates can make it negative.
    public var cumulativeLost: Int32
    public var highestSequence: UInt32
    public var jitter: UInt32
    /// The middle 32 bits of the last SR's NTP timestamp.
    public var lastSR: UInt32
    /// In 1/65536 s.
    public var delaySinceLastSR: UInt32

    public init(ssrc: UInt32, fractionLost: UInt8 = 0, cumulativeLost: Int32 = 0, highestSequence: UInt32 = 0,
                jitter: UInt32 = 0, lastSR: UInt32 = 0, delaySinceLastSR: UInt32 = 0) {
        (self.ssrc, self.fractionLost, self.cumulativeLost, self.highestSequence) = (ssrc, fractionLost, cumulativeLost, highestSequence)
        (self.jitter, self.lastSR, self.delaySinceLastSR) = (jitter, lastSR, delaySinceLastSR)
    }

    static let size = 24

    init(_ b: ArraySlice<UInt8>) {
        let s = b.startIndex
        ssrc = RTCP.u32(b, s)
        fractionLost = b[s + 4]
        let raw = Int32(b[s + 5]) << 16 | Int32(b[s + 6]) << 8 | Int32(b[s + 7])
        cumulativeLost = raw & 0x80_0000 != 0 ? raw - 0x100_0000 : raw
        highestSequence = RTCP.u32(b, s + 8)
        jitter = RTCP.u32(b, s + 12)
        lastSR = RTCP.u32(b, s + 16)
        delaySinceLastSR = RTCP.u32(b, s + 20)
    }

    func write(to out: inout [UInt8]) {
        RTCP.append(ssrc, to: &out)
        let lost = UInt32(bitPattern: max(-0x80_0000, min(0x7F_FFFF, cumulativeLost))) & 0xFF_FFFF
        out += [fractionLost, UInt8(lost >> 16), UInt8(lost >> 8 & 0xFF), UInt8(lost & 0xFF)]
        for v in [highestSequence, jitter, lastSR, delaySinceLastSR] { RTCP.append(v, to: &out) }
    }
}
