/// What a receiver counts of one incoming RTP stream to fill its reception report blocks (RFC 3550 6.4.1): the
/// extended highest sequence number (A.1), packets expected and lost, in all and since the last report (A.3),
/// interarrival jitter (A.8), and the last sender report's time (LSR/DLSR). A pure value: arrival times are
/// passed in, in seconds on any monotonic clock.
public struct ReceiveStatistics: Sendable {
    public let ssrc: UInt32
    /// RTP clock ticks per second (90000 for video, 48000 for Opus): jitter is in these units.
    public let clockRate: Double

    var started = false
    var baseSequence: UInt32 = 0
    var maxSequence: UInt16 = 0
    /// Sequence number wraps so far, times 65536.
    var cycles: UInt32 = 0
    public private(set) var received: UInt32 = 0
    var expectedPrior: UInt32 = 0
    var receivedPrior: UInt32 = 0
    var lastTransit: Double?
    var jitter: Double = 0
    /// The middle 32 bits of the last SR's NTP time, and when it arrived.
    var lastSR: (middle: UInt32, arrival: Double)?

    /// A jump of more than this many packets (forwards or back) is a new sequence space: the source restarted.
    static let maxDropout: UInt16 = 3000
    static let maxMisorder: UInt16 = 100

    public init(ssrc: UInt32, clockRate: Int) {
        self.ssrc = ssrc
        self.clockRate = Double(clockRate)
    }

    /// One RTP packet arrived (retransmissions included: RFC 3550 counts what arrives).
    public mutating func record(sequence: UInt16, timestamp: UInt32, arrival: Double) {
        if !started {
            started = true
            baseSequence = UInt32(sequence)
            maxSequence = sequence
        } else {
            let delta = sequence &- maxSequence
            if delta < Self.maxDropout {
                if sequence < maxSequence { cycles &+= 65536 }  // in order, with a permissible gap; wrapped
                maxSequence = sequence
            } else if delta <= UInt16.max - Self.maxMisorder {
                // A very large jump: the sender restarted its numbering. Count from here (A.1 waits for two
                // packets in sequence to be sure; a publisher's transport does not restart mid-session).
                baseSequence = UInt32(sequence)
                maxSequence = sequence
                cycles = 0
                received = 0
                expectedPrior = 0
                receivedPrior = 0
            }
            // else: late or duplicated, counted below and no more
        }
        received &+= 1
        let transit = arrival * clockRate - Double(timestamp)
        if let last = lastTransit {
            // Timestamps wrap at 2^32: take the difference modulo that, as the nearest signed value.
            var d = abs(transit - last)
            if d > 2_147_483_648 { d = abs(d - 4_294_967_296) }
            jitter += (d - jitter) / 16
        }
        lastTransit = transit
    }

    /// Packets expected and not received so far (RFC 3550 A.3; negative when duplicates outnumber losses).
    public var cumulativeLost: Int64 {
        guard started else { return 0 }
        return Int64(cycles &+ UInt32(maxSequence) &- baseSequence &+ 1) - Int64(received)
    }

    /// A sender report for this stream arrived at `arrival`.
    public mutating func senderReport(ntpTimestamp: UInt64, arrival: Double) {
        lastSR = (UInt32(truncatingIfNeeded: ntpTimestamp >> 16), arrival)
    }

    /// The report block for now, and the start of the next reporting interval. Nil before the first packet.
    public mutating func report(at now: Double) -> ReceptionReport? {
        guard started else { return nil }
        let extendedMax = cycles &+ UInt32(maxSequence)
        let expected = extendedMax &- baseSequence &+ 1
        let lost = Int64(expected) - Int64(received)
        let expectedInterval = expected &- expectedPrior
        let receivedInterval = received &- receivedPrior
        expectedPrior = expected
        receivedPrior = received
        let lostInterval = Int64(expectedInterval) - Int64(receivedInterval)
        let fraction: UInt8 = expectedInterval == 0 || lostInterval <= 0 ? 0 : UInt8(min(255, (lostInterval << 8) / Int64(expectedInterval)))
        var lsr: UInt32 = 0, dlsr: UInt32 = 0
        if let sr = lastSR {
            lsr = sr.middle
            dlsr = UInt32(min(Double(UInt32.max), max(0, now - sr.arrival) * 65536))
        }
        return ReceptionReport(ssrc: ssrc, fractionLost: fraction, cumulativeLost: Int32(max(-0x80_0000, min(0x7F_FFFF, lost))),
                               highestSequence: extendedMax, jitter: UInt32(jitter), lastSR: lsr, delaySinceLastSR: dlsr)
    }
}
