import RTP

/// The receiving side of transport-wide congestion control for one publisher: it notes when each packet with a
/// transport-wide sequence number arrived, and writes the feedback (RTCP transport-cc) that lets the sender's
/// congestion controller see a clean path and raise its bitrate. Pure: arrival times are passed in.
public struct TransportCCRecorder: Sendable {
    let start: ContinuousClock.Instant
    /// Arrival times by unwrapped sequence number, of packets not reported yet.
    var arrivals: [Int64: Duration] = [:]
    var highest: Int64?
    var nextToReport: Int64?
    var feedbackCount: UInt8 = 0
    /// Sequence numbers one feedback packet covers at most (a larger gap is reported in several).
    static let maximumPerFeedback: Int64 = 1000

    public init(start: ContinuousClock.Instant) { self.start = start }

    public mutating func record(_ sequence: UInt16, at instant: ContinuousClock.Instant) {
        let value: Int64
        if let h = highest {
            value = h + Int64(Int16(bitPattern: sequence &- UInt16(truncatingIfNeeded: h)))
        } else {
            value = Int64(sequence)
        }
        if let next = nextToReport, value < next { return }  // already reported as lost: too late to matter
        if nextToReport == nil { nextToReport = value }
        highest = max(highest ?? value, value)
        arrivals[value] = instant - start
    }

    /// Feedback for everything received since the last one; nil when nothing arrived.
    public mutating func feedback(senderSSRC: UInt32, mediaSSRC: UInt32) -> TransportFeedback? {
        guard let base = nextToReport, let high = highest, high >= base else { return nil }
        let end = min(high, base + Self.maximumPerFeedback - 1)
        var first: Duration?
        for seq in base...end {
            if let arrival = arrivals[seq] {
                first = arrival
                break
            }
        }
        guard let firstArrival = first else {
            nextToReport = end + 1
            return nil
        }
        let unit = Duration.milliseconds(64)
        let reference = Int64((firstArrival / unit).rounded(.down))
        var previous = unit * Int(reference)
        var deltas: [Int?] = []
        deltas.reserveCapacity(Int(end - base + 1))
        for seq in base...end {
            guard let arrival = arrivals.removeValue(forKey: seq) else {
                deltas.append(nil)
                continue
            }
            let ticks = Int(((arrival - previous) / TransportFeedback.tick).rounded(.down))
            let clamped = max(-32768, min(32767, ticks))
            deltas.append(clamped)
            previous += TransportFeedback.tick * clamped
        }
        nextToReport = end + 1
        let count = feedbackCount
        feedbackCount &+= 1
        return TransportFeedback(senderSSRC: senderSSRC, mediaSSRC: mediaSSRC, baseSequence: UInt16(truncatingIfNeeded: base),
                                 referenceTime: Int32(truncatingIfNeeded: reference & 0x7F_FFFF), feedbackCount: count, deltas: deltas)
    }
}
