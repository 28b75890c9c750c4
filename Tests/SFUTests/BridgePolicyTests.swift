import Testing
@testable import SFU

/// The RTMP-to-WebRTC bridge's two pure decisions: which pictures a viewer may be sent (B-frames), and the RTP
/// clock that brings a new viewer from the cached GOP to the live edge.
@Suite struct BridgePolicyTests {
    /// x264 without B-frames (`-tune zerolatency`): every picture goes; before the configuration and the first
    /// keyframe nothing does.
    @Test func aStreamWithoutReorderingPassesWhole() {
        var g = PictureGate()
        #expect(g.admit(session: 1, keyframe: true, dts: 0, compositionTime: 0, nonReference: false) == .drop(.noConfiguration))
        g.configured(valid: true)
        #expect(g.admit(session: 1, keyframe: false, dts: 33, compositionTime: 0, nonReference: false) == .drop(.waitingForKeyframe))
        #expect(g.admit(session: 1, keyframe: true, dts: 67, compositionTime: 0, nonReference: false) == .send)
        for i in 3..<60 {
            // Non-reference P pictures (some encoders make them) stay: without reordering nothing needs dropping.
            #expect(g.admit(session: 1, keyframe: false, dts: Int64(i * 33), compositionTime: 0, nonReference: i % 2 == 0) == .send)
        }
    }

    /// x264 `-bf 3 -b-pyramid none`, in decode order with composition offsets (ms): I0 P3 b1 b2 P6 b4 b5. The
    /// non-reference b's are left out; I and P are in display order on their own.
    @Test func nonReferenceBFramesAreLeftOut() {
        var g = PictureGate()
        g.configured(valid: true)
        let frames: [(dts: Int64, cts: Int32, key: Bool, ref: Bool)] = [
            (0, 33, true, true), (33, 100, false, true), (67, 0, false, false), (100, 0, false, false),
            (133, 100, false, true), (167, 0, false, false), (200, 0, false, false), (233, 100, false, true),
        ]
        let verdicts = frames.map { g.admit(session: 1, keyframe: $0.key, dts: $0.dts, compositionTime: $0.cts, nonReference: !$0.ref) }
        #expect(verdicts == [.send, .send, .drop(.nonReference), .drop(.nonReference), .send, .drop(.nonReference), .drop(.nonReference), .send])
    }

    /// x264's default b-pyramid: a B-frame kept as a reference (B2) is shown before the P already sent; nothing
    /// can be sent without reordering, so only keyframes go until the configuration or session changes.
    @Test func referenceBFramesLeaveKeyframesOnly() {
        var g = PictureGate()
        g.configured(valid: true)
        // Decode order I0 P4 B2(ref) b1 b3 P8 B6(ref) ..., 33 ms a picture, display delay 67 ms.
        #expect(g.admit(session: 1, keyframe: true, dts: 0, compositionTime: 67, nonReference: false) == .send)
        #expect(g.admit(session: 1, keyframe: false, dts: 33, compositionTime: 167, nonReference: false) == .send)  // P4 at 200
        #expect(g.admit(session: 1, keyframe: false, dts: 67, compositionTime: 67, nonReference: false) == .drop(.reordered))  // B2 at 133
        #expect(g.admit(session: 1, keyframe: false, dts: 100, compositionTime: 0, nonReference: true) == .drop(.nonReference))
        #expect(g.admit(session: 1, keyframe: false, dts: 167, compositionTime: 167, nonReference: false) == .drop(.keyframesOnly))
        #expect(g.admit(session: 1, keyframe: true, dts: 4000, compositionTime: 67, nonReference: false) == .send)
        #expect(g.admit(session: 1, keyframe: false, dts: 4033, compositionTime: 167, nonReference: false) == .drop(.keyframesOnly))
        // A republish without B-frames plays whole again.
        g.configured(valid: true)
        #expect(g.admit(session: 2, keyframe: true, dts: 6000, compositionTime: 0, nonReference: false) == .send)
        #expect(g.admit(session: 2, keyframe: false, dts: 6033, compositionTime: 0, nonReference: false) == .send)
    }

    /// Two pictures stamped with the same millisecond (a stalled encoder) are not reordering; the second gets an
    /// RTP time one tick later, since receivers group packets into pictures by timestamp.
    @Test func equalTimesAreNotReordering() {
        var g = PictureGate()
        g.configured(valid: true)
        #expect(g.admit(session: 1, keyframe: true, dts: 100, compositionTime: 0, nonReference: false) == .send)
        #expect(g.admit(session: 1, keyframe: false, dts: 100, compositionTime: 0, nonReference: false) == .send)
        #expect(g.admit(session: 1, keyframe: false, dts: 99, compositionTime: 0, nonReference: false) == .drop(.reordered))
        var c = CatchUpClock(speed: 4, slack: 100, start: 500)
        #expect(c.stamp(dts: 100, cts: 0, liveEdge: 100, now: 0).timestamp == 500)
        #expect(c.stamp(dts: 100, cts: 0, liveEdge: 100, now: 0).timestamp == 501)
        #expect(c.stamp(dts: 133, cts: 0, liveEdge: 133, now: 0).timestamp == 500 + 2970)
    }

    @Test func brokenPicturesAndConfigurationsWaitForAKeyframe() {
        var g = PictureGate()
        g.configured(valid: true)
        #expect(g.admit(session: 1, keyframe: true, dts: 0, compositionTime: 0, nonReference: false) == .send)
        g.broken()
        #expect(g.admit(session: 1, keyframe: false, dts: 33, compositionTime: 0, nonReference: false) == .drop(.waitingForKeyframe))
        #expect(g.admit(session: 1, keyframe: true, dts: 67, compositionTime: 0, nonReference: false) == .send)
        g.configured(valid: false)
        #expect(g.admit(session: 1, keyframe: true, dts: 100, compositionTime: 0, nonReference: false) == .drop(.noConfiguration))
        g.configured(valid: true)  // a new resolution
        #expect(g.admit(session: 1, keyframe: false, dts: 133, compositionTime: 0, nonReference: false) == .drop(.waitingForKeyframe))
        #expect(g.admit(session: 1, keyframe: true, dts: 167, compositionTime: 0, nonReference: false) == .send)
    }

    /// A viewer joins 3 s into a 4 s GOP: the keyframe goes at once, the cached pictures at 4x real time with
    /// timestamps compressed 4x; the first picture at the live edge switches to real time, continuing the clock.
    @Test func theCachedGOPIsSentFasterWithCompressedTimestamps() {
        var c = CatchUpClock(speed: 4, slack: 100, start: 1000)
        let joined: UInt64 = 5_000_000_000
        #expect(c.due(0) == nil)
        let first = c.stamp(dts: 0, cts: 0, liveEdge: 3000, now: joined)
        #expect(first.timestamp == 1000 && first.event == .started(behind: true))
        // 1.2 s of media later: due 300 ms after the start, 1.2 s x 90 kHz / 4 later in RTP time.
        #expect(c.due(1200) == joined + 300_000_000)
        #expect(c.stamp(dts: 1200, cts: 0, liveEdge: 3300, now: joined + 300_000_000).timestamp == 1000 + 27_000)
        // The pictures caught up with the publisher (the edge moved 1 s meanwhile): real time from here.
        let caught = c.stamp(dts: 3950, cts: 0, liveEdge: 4000, now: joined + 987_500_000)
        #expect(caught.event == .caughtUp && caught.timestamp == 1000 + 88_875)
        #expect(c.due(4000) == nil)
        #expect(c.stamp(dts: 3983, cts: 0, liveEdge: 4033, now: joined + 1_020_000_000).timestamp == 1000 + 88_875 + 2970)
    }

    @Test func aViewerAtTheLiveEdgeStartsInRealTimeAndTheClockWraps() {
        var c = CatchUpClock(speed: 4, slack: 100, start: UInt32.max - 1000)
        #expect(c.stamp(dts: 10_000, cts: 0, liveEdge: 10_040, now: 0).event == .started(behind: false))
        #expect(c.due(10_033) == nil)
        // 33 ms later: 2970 ticks, past the wrap; a composition offset adds on top.
        #expect(c.stamp(dts: 10_033, cts: 0, liveEdge: 10_040, now: 0).timestamp == 1969)
        #expect(c.stamp(dts: 10_067, cts: 67, liveEdge: 10_070, now: 0).timestamp == UInt32.max - 1000 &+ 12_060)
    }
}
