import NIOCore
@testable import StreamHub
import Testing

@Suite struct ViewerQueueTests {
    let ms: UInt64 = 1_000_000

    @Test func queuesWithinBound() {
        var q = ViewerQueue(maxBytes: 10_000, maxWait: 1000 * ms)
        for i in 0..<10 { q.push(Frames.frame(.video, Frames.video(key: i == 0), ts: UInt32(i * 40)), now: UInt64(i) * ms, hasVideo: true) }
        #expect(q.count == 10)
        #expect(q.skips == 0)
        #expect(q.drain().map(\.timestamp) == (0..<10).map { UInt32($0 * 40) })
        #expect(q.bytes == 0)
    }

    @Test func skipsToNewestQueuedKeyframeKeepingConfiguration() {
        var q = ViewerQueue(maxBytes: 2000, maxWait: 10_000 * ms)
        q.push(Frames.frame(.video, Frames.avcConfig, ts: 0), now: 0, hasVideo: true)
        q.push(Frames.frame(.audio, Frames.aacConfig, ts: 0), now: 0, hasVideo: true)
        var ts: UInt32 = 0
        for i in 0..<20 {
            q.push(Frames.frame(.video, Frames.video(key: i % 10 == 0, bytes: 150), ts: ts), now: 0, hasVideo: true)
            ts += 40
        }
        #expect(q.skips >= 1)
        #expect(q.bytes <= 2000)
        let out = q.drain()
        #expect(out[0].isSequenceHeader && out[0].kind == .video)
        #expect(out[1].isSequenceHeader && out[1].kind == .audio)
        #expect(out[2].isKeyframe)
        #expect(out[2].timestamp == 400)
        #expect(!q.waitingForKeyframe)
    }

    @Test func dropsEverythingAndWaitsForKeyframeWhenTooFarBehind() {
        var q = ViewerQueue(maxBytes: 1_000_000, maxWait: 500 * ms)
        q.push(Frames.frame(.video, Frames.video(key: true), ts: 0), now: 0, hasVideo: true)
        for i in 1...20 { q.push(Frames.frame(.video, Frames.video(key: false), ts: UInt32(i * 40)), now: UInt64(i * 40) * ms, hasVideo: true) }
        // The head waited more than 500 ms and no later keyframe is queued: everything goes.
        #expect(q.waitingForKeyframe)
        #expect(q.count == 0)
        q.push(Frames.frame(.video, Frames.video(key: false), ts: 900), now: 900 * ms, hasVideo: true)
        q.push(Frames.frame(.audio, Frames.audio(), ts: 900), now: 900 * ms, hasVideo: true)
        #expect(q.count == 0)
        q.push(Frames.frame(.video, Frames.video(key: true), ts: 1000), now: 1000 * ms, hasVideo: true)
        #expect(q.count == 1)
        #expect(q.droppedFrames == 23)
    }

    @Test func initialBurstDoesNotCountAsLag() {
        // Ten seconds of cached GOP pushed at once: its media span is 10 s but nothing has waited.
        var q = ViewerQueue(maxBytes: 1 << 20, maxWait: 1000 * ms)
        for i in 0..<250 { q.push(Frames.frame(.video, Frames.video(key: i == 0), ts: UInt32(i * 40)), now: 5 * ms, hasVideo: true) }
        #expect(q.skips == 0)
        #expect(q.count == 250)
    }

    @Test func audioOnlyResumesWithNextFrame() {
        var q = ViewerQueue(maxBytes: 100, maxWait: 1000 * ms)
        for i in 0..<10 { q.push(Frames.frame(.audio, Frames.audio(), ts: UInt32(i * 23)), now: 0, hasVideo: false) }
        #expect(q.skips > 0)
        #expect(!q.waitingForKeyframe)
        q.push(Frames.frame(.audio, Frames.audio(), ts: 500), now: 0, hasVideo: false)
        #expect(q.count >= 1)
    }
}
