/// Keeps one viewer-side timeline per source across publisher sessions and timestamp glitches.
///
/// A publisher that reconnects starts its timestamps at 0 again; viewers that stayed connected must not
/// see time go backwards (players stall or drop frames) nor jump ahead (players wait). The corrector maps
/// each publishing session onto the output timeline so that its first frame lands `outage` milliseconds
/// after the last frame of the previous session: time advances exactly as long as the stream was away.
/// Within a session, a jump backwards by more than `maxBackwardJump` or forwards by more than
/// `maxForwardJump` is treated the same way, the outage being the wall-clock time since the last frame.
public struct TimestampCorrector: Sendable {
    /// Audio and video interleave with small reorderings; only bigger steps are discontinuities.
    public var maxBackwardJump: Int64 = 1_000
    /// Larger than any sane gap between two frames of a live stream.
    public var maxForwardJump: Int64 = 10_000

    var offset: Int64 = 0
    var lastOut: Int64?
    var lastIn: Int64?
    /// Monotonic milliseconds when the last frame was corrected.
    var lastWall: Int64 = 0
    var sessionStart = true
    /// The input timeline is unwrapped here: RTMP timestamps are 32-bit and wrap after 49.7 days.
    var inputEpoch: Int64 = 0

    public init() {}

    /// Marks the start of a new publishing session: its first timestamp is re-based.
    public mutating func beginSession() { sessionStart = true }

    /// Maps a publisher timestamp (ms) received at monotonic time `nowMs` to the output timeline.
    public mutating func correct(_ timestamp: UInt32, nowMs: Int64) -> UInt32 {
        var input = inputEpoch + Int64(timestamp)
        if let lastIn, !sessionStart, lastIn - input > Int64(UInt32.max) / 2 {
            inputEpoch += Int64(UInt32.max) + 1  // wrapped around
            input += Int64(UInt32.max) + 1
        }
        if sessionStart {
            if let lastOut {
                offset = lastOut + max(0, nowMs - lastWall) - input
            } else {
                offset = 0
            }
            sessionStart = false
        } else if let lastOut {
            let out = input + offset
            if out < lastOut - maxBackwardJump || out > lastOut + maxForwardJump {
                // A glitch inside a session: continue from where viewers are, as far on as the wall clock went
                // since the last frame (at least 1 ms: two frames of one track must never share a timestamp,
                // which muxers reject).
                offset = lastOut + max(1, nowMs - lastWall) - input
            }
        }
        let out = input + offset
        lastIn = input
        lastOut = max(out, lastOut ?? out)
        lastWall = nowMs
        return UInt32(truncatingIfNeeded: out)
    }
}
