import Foundation
import NIOCore
import Server
import StreamHub
import Testing

/// A viewer that reads slower than the stream is moved forward; another viewer is not affected.
@Suite(.serialized, .timeLimit(.minutes(5))) struct SlowViewerTests {
    @Test func slowViewerSkipsAndFastViewerKeepsUp() async throws {
        let server = try await TestServer.start {
            $0.hub.viewerMaxWait = .seconds(1)
            $0.hub.viewerMaxQueueBytes = 512 << 10
            $0.hub.viewerSendBuffer = 16 << 10
        }
        defer { Task { await server.stop() } }
        let key = StreamKey(app: "live", stream: "slow")!
        // 1.5 Mbps constant bitrate (filler included), 1 s GOP.
        let publisher = try Tool.publisher(url: "\(server.rtmpURL)/live/slow", seconds: nil, gop: 30, extra: [
            "-b:v", "1500k", "-minrate", "1500k", "-maxrate", "1500k", "-bufsize", "750k", "-x264-params", "nal-hrd=cbr",
        ])
        defer { publisher.kill() }
        try await server.waitForStream(key)

        let fast = try await FLVTestClient.open(port: server.ports.http, path: "/live/slow.flv")
        // 4 KiB every 100 ms: about 330 kbit/s, a fifth of the stream.
        let slow = try await FLVTestClient.open(port: server.ports.http, path: "/live/slow.flv", throttled: true, readSize: 4096)
        defer { Task { await fast.close(); await slow.close() } }

        let duration = Duration.seconds(12)
        async let fastDone: Bool = fast.read(until: { $0.started + duration < .now }, timeout: duration + .seconds(2))
        async let slowDone: Void = {
            let end = ContinuousClock.now + duration
            while ContinuousClock.now < end {
                try await Task.sleep(for: .milliseconds(100))
                try await slow.poll(timeout: .seconds(2))
            }
        }()
        _ = try await fastDone
        // Where the publisher is as the fast viewer stops reading: the fast viewer is compared with the stream, not
        // with the wall clock (a starved machine slows the ffmpeg publisher itself: once 6.7 s of media in 9.2 s).
        let liveEdge = try #require(server.swarm.hub.source(key)).lastTimestamp
        _ = try await slowDone

        let source = try #require(server.swarm.hub.source(key))
        let stats = source.viewers.map(\.stats).sorted { $0.id < $1.id }
        try #require(stats.count == 2)
        let (fastStats, slowStats) = (stats[0], stats[1])
        print("slow viewer: \(slowStats.skips) skips, \(slowStats.droppedFrames) frames dropped, peak queue \(slowStats.peakQueuedBytes) B of \(slowStats.maxQueuedBytes) B")
        print("fast viewer: \(fastStats.skips) skips, peak queue \(fastStats.peakQueuedBytes) B, \(fast.tags.count) tags")
        #expect(slowStats.skips > 0)
        #expect(slowStats.droppedFrames > 0)
        #expect(slowStats.peakQueuedBytes <= slowStats.maxQueuedBytes)
        #expect(fastStats.skips == 0 && fastStats.droppedFrames == 0)

        // The fast viewer got every frame at the stream's rate, 30 fps over its last 8 s, and ends at the live edge.
        let video = fast.tags.filter { $0.tag.type == .video && !$0.isVideoConfig }
        let window = video.filter { $0.arrival > fast.started + .seconds(3) }
        let first = try #require(window.first), last = try #require(window.last)
        let mediaMs = Int(last.tag.timestamp) - Int(first.tag.timestamp)
        let wall = last.arrival - first.arrival
        let wallMs = Int(wall.components.seconds) * 1000 + Int(wall.components.attoseconds / 1_000_000_000_000_000)
        let fps = Double(window.count - 1) / (Double(mediaMs) / 1000)
        let behind = Int(liveEdge) - Int(fast.tags.last?.tag.timestamp ?? 0)
        print("fast viewer: \(mediaMs) ms of media in \(wallMs) ms, \(String(format: "%.1f", fps)) fps, \(behind) ms behind the publisher at the end")
        #expect(behind < 500, "the fast viewer is \(behind) ms behind the live edge")
        #expect(fps > 29 && fps < 31)
        // The slow viewer was moved forward, not left to fall ever further behind: the media time it covered is
        // far more than the bytes it read could carry in sequence. (It reads about a fifth of the stream's bytes;
        // without skipping it would cover about a fifth of the run's media time.)
        let slowVideo = slow.tags.filter { $0.tag.type == .video && !$0.isVideoConfig }
        let slowFirst = try #require(slowVideo.first?.tag.timestamp)
        let slowLast = try #require(slowVideo.last?.tag.timestamp)
        let fastFirst = try #require(video.first?.tag.timestamp)
        let fastLast = try #require(video.last?.tag.timestamp)
        let fastBytes = fast.tags.reduce(0) { $0 + $1.tag.body.readableBytes + 15 }
        let slowBytes = slow.tags.reduce(0) { $0 + $1.tag.body.readableBytes + 15 }
        let bytesPerMs = Double(fastBytes) / Double(fastLast - fastFirst)
        let carried = Double(slowBytes) / bytesPerMs
        let covered = Double(slowLast - slowFirst)
        print("slow viewer: \(slowStats.sentBytes) B handed to its connection, \(slowBytes) B parsed by the client")
        print("slow viewer: covered \(Int(covered)) ms of media with bytes worth \(Int(carried)) ms; behind the fast viewer by \(Int(fastLast) - Int(slowLast)) ms at the end")
        if ProcessInfo.processInfo.environment["LIVESWARM_TEST_TRACE"] != nil {
            for (a, b) in zip(slowVideo, slowVideo.dropFirst()) where b.tag.timestamp > a.tag.timestamp + 40 || b.isVideoKeyframe {
                print("slow: ts \(a.tag.timestamp) -> \(b.tag.timestamp) key=\(b.isVideoKeyframe) at \(b.arrival - slow.started)")
            }
        }
        // Every jump lands on a keyframe: the decoder never gets a frame whose reference was skipped.
        for (a, b) in zip(slowVideo, slowVideo.dropFirst()) where b.tag.timestamp > a.tag.timestamp + 40 {
            #expect(b.isVideoKeyframe, "jump \(a.tag.timestamp) -> \(b.tag.timestamp) lands on a non-key frame")
        }
        #expect(covered > 2 * carried)
    }
}
