import NIOCore
@testable import StreamHub
import Testing

@Suite struct StreamHubTests {
    let key = StreamKey(app: "live", stream: "cam")!

    func publishGOP(_ p: Publisher, from ts: UInt32, frames: Int = 25) {
        for i in 0..<frames {
            p.send(.video, timestamp: ts + UInt32(i * 40), payload: Frames.video(key: i == 0))
            p.send(.audio, timestamp: ts + UInt32(i * 40), payload: Frames.audio())
        }
    }

    @Test func newViewerGetsConfigurationAndCachedGOP() async throws {
        let hub = StreamHub()
        let p = try hub.publish(key, protocolName: "rtmp", peer: "test")
        p.send(.video, timestamp: 0, payload: Frames.avcConfig)
        p.send(.audio, timestamp: 0, payload: Frames.aacConfig)
        publishGOP(p, from: 0)
        publishGOP(p, from: 1000, frames: 10)
        let v = try hub.subscribe(key, protocolName: "http-flv", peer: "t")
        let batch = try #require(await v.next())
        #expect(batch[0].isSequenceHeader && batch[0].kind == .video)
        #expect(batch[1].isSequenceHeader && batch[1].kind == .audio)
        #expect(batch[2].isKeyframe && batch[2].timestamp == 1000)
        #expect(batch.count == 2 + 20)
        let info = hub.snapshot()[0].info
        #expect(info.width == 640 && info.height == 360)
        #expect(info.videoCodecString == "avc1.64001e")
        #expect(info.sampleRate == 44100 && info.channels == 2)
    }

    @Test func secondPublisherIsRefused() throws {
        let hub = StreamHub()
        let p = try hub.publish(key, protocolName: "rtmp", peer: "a")
        #expect(throws: HubError.alreadyPublishing(key)) { try hub.publish(key, protocolName: "rtmp", peer: "b") }
        p.unpublish()
        _ = try hub.publish(key, protocolName: "rtmp", peer: "b")
    }

    @Test func missingStreamIsNotFound() {
        let hub = StreamHub()
        #expect(throws: HubError.streamNotFound(key)) { try hub.subscribe(key, protocolName: "rtmp", peer: "") }
    }

    @Test func viewersWaitThroughRepublishAndKeepOneTimeline() async throws {
        let clock = TestClock()
        var config = HubConfiguration()
        config.republishGrace = .seconds(10)
        let hub = StreamHub(configuration: config, clock: clock.clock)
        var p = try hub.publish(key, protocolName: "rtmp", peer: "a")
        publishGOP(p, from: 0)
        clock.advance(ms: 1000)
        let v = try hub.subscribe(key, protocolName: "http-flv", peer: "t")
        let first = try #require(await v.next())
        p.unpublish()
        clock.advance(ms: 2000)
        hub.sweep()
        #expect(!v.isClosed)
        p = try hub.publish(key, protocolName: "rtmp", peer: "a")
        publishGOP(p, from: 0, frames: 2)
        let second = try #require(await v.next())
        let lastBefore = try #require(first.map(\.timestamp).max())
        let firstAfter = try #require(second.first?.timestamp)
        #expect(firstAfter >= lastBefore)
        #expect(firstAfter - lastBefore <= 2000 + 1000)  // no more than the outage (plus the clock step)
        #expect(hub.snapshot()[0].sessions == 2)
    }

    @Test func abandonedStreamEndsItsViewersAfterGrace() async throws {
        let clock = TestClock()
        let hub = StreamHub(clock: clock.clock)
        let p = try hub.publish(key, protocolName: "rtmp", peer: "a")
        let v = try hub.subscribe(key, protocolName: "rtmp", peer: "t")
        p.unpublish()
        clock.advance(ms: 9000)
        hub.sweep()
        #expect(hub.source(key) != nil)
        clock.advance(ms: 2000)
        hub.sweep()
        #expect(hub.source(key) == nil)
        #expect(await v.next() == nil)
    }

    @Test func closedViewerIsDetached() throws {
        let hub = StreamHub()
        _ = try hub.publish(key, protocolName: "rtmp", peer: "a")
        let v = try hub.subscribe(key, protocolName: "rtmp", peer: "t")
        #expect(hub.snapshot()[0].viewerCount == 1)
        v.close()
        #expect(hub.snapshot()[0].viewerCount == 0)
    }

    @Test func stalledViewerDoesNotAffectAnother() async throws {
        let clock = TestClock()
        var config = HubConfiguration()
        config.viewerMaxWait = .seconds(2)
        let hub = StreamHub(configuration: config, clock: clock.clock)
        let p = try hub.publish(key, protocolName: "rtmp", peer: "a")
        let stalled = try hub.subscribe(key, protocolName: "http-flv", peer: "slow")
        let healthy = try hub.subscribe(key, protocolName: "http-flv", peer: "fast")
        var received = 0
        for gop in 0..<10 {
            publishGOP(p, from: UInt32(gop * 1000))
            clock.advance(ms: 1000)
            received += (await healthy.next() ?? []).count
        }
        #expect(received == 10 * 50)
        #expect(healthy.stats.skips == 0)
        let s = stalled.stats
        #expect(s.skips > 0)
        #expect(s.queuedFrames <= 100)  // never more than about two seconds of frames
    }

    @Test func cancelledNextReturnsNil() async throws {
        let hub = StreamHub()
        _ = try hub.publish(key, protocolName: "rtmp", peer: "a")
        let v = try hub.subscribe(key, protocolName: "rtmp", peer: "t")
        let task = Task { await v.next() }
        task.cancel()
        #expect(await task.value == nil)
    }

    @Test func streamKeyValidation() {
        #expect(StreamKey(app: "live", stream: "a-b_c.1") != nil)
        for bad in ["", ".hidden", "a/b", "a b", "a?b", String(repeating: "x", count: 129), "é"] {
            #expect(StreamKey(app: "live", stream: bad) == nil)
        }
    }
}
