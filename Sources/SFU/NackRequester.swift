/// Which packets of a publisher's stream to ask for again (RFC 4585 generic NACK), as a receiver keeps them: a gap
/// in the sequence numbers makes the missing ones wanted at once; each is asked for again when a round trip has
/// passed without it, a few times, while it is young enough to still be useful; a retransmission that fills one
/// is welcome, anything else old is a duplicate. A pure value: times are seconds on any monotonic clock.
public struct NackRequester: Sendable {
    struct Missing {
        var since: Double
        var lastAsked: Double?
        var tries = 0
    }

    var highest: UInt16?
    var missing: [UInt16: Missing] = [:]
    public private(set) var requested = 0
    public private(set) var recovered = 0

    /// How many times one packet is asked for (libwebrtc's receivers stop at 10).
    public static let maxTries = 10
    /// A packet older than this is not asked for any more: a video receiver has given up on it.
    public static let maxAge = 1.0
    /// At most this many packets are wanted at a time; a bigger gap is not worth repairing (a keyframe is).
    public static let maxMissing = 500
    /// The shortest wait between two requests for one packet, whatever the round-trip time says.
    public static let minRetryInterval = 0.02

    public init() {}

    public var missingCount: Int { missing.count }

    /// What is known of one packet, for the logs: "missing, asked N times, since S", "not missing".
    public func describe(_ sequence: UInt16, now: Double) -> String {
        guard let m = missing[sequence] else { return "not missing (arrived, given up, or never seen as a gap)" }
        return "missing for \(Int((now - m.since) * 1000)) ms, asked \(m.tries) times"
    }

    public enum Arrival: Equatable, Sendable {
        /// The next packet.
        case new
        /// A packet after a gap, whose packets are now wanted.
        case afterGap
        /// A packet that was wanted: a retransmission, or a late one.
        case filledGap
        /// Older than the newest and not wanted: a duplicate.
        case duplicate
    }

    /// A packet with `sequence` arrived at `now`.
    public mutating func received(_ sequence: UInt16, at now: Double) -> Arrival {
        guard let last = highest else {
            highest = sequence
            return .new
        }
        let ahead = sequence &- last
        if ahead != 0 && ahead < 0x8000 {
            highest = sequence
            let gap = Int(ahead) - 1
            guard gap > 0 else { return .new }
            guard missing.count + gap <= Self.maxMissing else {
                missing.removeAll()  // too much to repair: start again from here
                return .new
            }
            for i in 1...UInt16(gap) { missing[last &+ i] = Missing(since: now) }
            return .afterGap
        }
        if missing.removeValue(forKey: sequence) != nil {
            recovered += 1
            return .filledGap
        }
        return .duplicate
    }

    /// The packets to ask for now: never asked, or last asked at least `retryAfter` (about a round trip) ago.
    /// Packets asked for `maxTries` times, or older than `maxAge`, are given up.
    public mutating func due(at now: Double, retryAfter: Double) -> [UInt16] {
        var out: [UInt16] = []
        let wait = max(retryAfter, Self.minRetryInterval)
        for (seq, m) in missing {
            if m.tries >= Self.maxTries || now - m.since > Self.maxAge {
                missing[seq] = nil
                continue
            }
            if let asked = m.lastAsked, now - asked < wait { continue }
            missing[seq]?.lastAsked = now
            missing[seq]?.tries += 1
            out.append(seq)
        }
        requested += out.count
        // In sequence order from the oldest, as they went missing (sorting by distance from the newest).
        if let h = highest { out.sort { (h &- $0) > (h &- $1) } }
        return out
    }
}
