/// Which pictures of an RTMP H.264 stream one WebRTC viewer is sent (pure: no clock, no I/O).
///
/// Chromium's WebRTC H.264 decoder does not reorder pictures: a stream whose display order differs from its
/// decode order (B-frames) decodes only at keyframes and the browser asks for keyframes without end (measured,
/// docs/WEBRTC.md). So, with no picture ever sent corrupted or out of order:
/// - a stream without reordering passes through whole;
/// - in a stream with reordering (a composition time offset seen), non-reference pictures (`nal_ref_idc` 0, what
///   x264 makes of B-frames without b-pyramid) are left out: nothing refers to them;
/// - if reordering remains among the rest (B-frames kept as references: x264's default b-pyramid), the viewer gets
///   keyframes only until the publisher's configuration or session changes;
/// - after a new configuration, a new publishing session or a broken frame, nothing goes until a keyframe.
struct PictureGate: Sendable {
    enum Verdict: Equatable, Sendable {
        case send
        case drop(Reason)
    }

    enum Reason: Error, Equatable, Sendable {
        case noConfiguration, waitingForKeyframe, nonReference, reordered, keyframesOnly
    }

    var configured = false
    var needKeyframe = true
    var session = 0
    var reorders = false
    var keyframesOnly = false
    var lastPTS: Int64?

    /// A new AVC configuration: usable (`valid`) or not; either way the next picture sent is a keyframe.
    mutating func configured(valid: Bool) {
        configured = valid
        needKeyframe = true
        keyframesOnly = false
    }

    /// A picture that could not be sent (broken NAL units): the pictures after it may refer to it.
    mutating func broken() { needKeyframe = true }

    mutating func admit(session s: Int, keyframe: Bool, dts: Int64, compositionTime: Int32, nonReference: Bool) -> Verdict {
        if s != session {
            session = s
            needKeyframe = true
            reorders = false
            keyframesOnly = false
            lastPTS = nil
        }
        guard configured else { return .drop(.noConfiguration) }
        if compositionTime != 0 { reorders = true }
        if reorders && nonReference && !keyframe { return .drop(.nonReference) }
        if keyframesOnly && !keyframe { return .drop(.keyframesOnly) }
        if needKeyframe && !keyframe { return .drop(.waitingForKeyframe) }
        let pts = dts + Int64(compositionTime)
        if let last = lastPTS, pts < last {
            // Shown before a picture already sent: the decoder would have to reorder. (An equal time is not
            // reordering: RTMP times are whole milliseconds, and a stalled encoder can stamp two frames alike.)
            keyframesOnly = true
            needKeyframe = true
            return .drop(.reordered)
        }
        needKeyframe = false
        lastPTS = pts
        return .send
    }
}

/// One viewer's RTP clock for a hub stream (pure). The cached GOP a new viewer gets is sent `speed` times faster
/// than real time, and its timestamps are compressed by the same factor, so the browser's jitter buffer sees
/// packets arriving as their timestamps say and plays them at once; from the first picture within `slack` ms of
/// the live edge, time runs at its normal rate, continuing from where the compressed part ended.
struct CatchUpClock: Sendable {
    let speed: Double
    let slack: Int64
    /// RTP time of the first picture.
    let start: Int64
    /// RTP time = `rtp` + (hub ms - `ms`) x 90 x `slope`.
    var anchor: (ms: Int64, rtp: Int64, slope: Double)?
    /// While catching up: when the first picture went (ns, any monotonic clock) and its hub time (ms).
    var catchUp: (startedAt: UInt64, firstMs: Int64)?
    /// The last RTP time given (unwrapped): each picture gets a later one, as receivers group packets into
    /// pictures by timestamp.
    var last: Int64?

    enum Event: Equatable, Sendable {
        /// The first picture; `behind` when it starts a catch-up.
        case started(behind: Bool)
        case caughtUp
    }

    init(speed: Double, slack: Int64, start: UInt32) {
        (self.speed, self.slack, self.start) = (speed, slack, Int64(start))
    }

    /// When the picture at hub time `ms` is due (ns), nil when it goes at once.
    func due(_ ms: Int64) -> UInt64? {
        guard let c = catchUp else { return nil }
        return c.startedAt + UInt64(Double(max(0, ms - c.firstMs)) / speed * 1e6)
    }

    var isCatchingUp: Bool { catchUp != nil }

    /// The RTP timestamp of a picture being sent now (`now`, ns) whose decode time is `dts` and composition offset
    /// `cts` (hub ms), with the live edge (the newest frame from the publisher) at `liveEdge`.
    mutating func stamp(dts: Int64, cts: Int32, liveEdge: Int64, now: UInt64) -> (timestamp: UInt32, event: Event?) {
        var event: Event?
        if anchor == nil {
            let behind = liveEdge - dts > slack
            anchor = (dts, start, behind ? 1 / speed : 1)
            if behind { catchUp = (now, dts) }
            event = .started(behind: behind)
        } else if catchUp != nil, liveEdge - dts <= slack {
            let a = anchor!
            anchor = (dts, a.rtp + Int64((Double(dts - a.ms) * 90 * a.slope).rounded()), 1)
            catchUp = nil
            event = .caughtUp
        }
        let a = anchor!
        let pts = Double(dts - a.ms) + Double(cts)
        var t = a.rtp + Int64((pts * 90 * a.slope).rounded())
        if let last, t <= last { t = last + 1 }
        last = t
        return (UInt32(truncatingIfNeeded: t), event)
    }
}
