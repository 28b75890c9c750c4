import Foundation
import FLV
import NIOCore
import Server
import StreamHub
import Testing

/// Real ffmpeg publishes; real ffprobe and ffmpeg watch over RTMP and HTTP-FLV.
@Suite(.serialized, .timeLimit(.minutes(5))) struct FFmpegInteropTests {
    let key = StreamKey(app: "live", stream: "interop")!

    @Test func ffprobeAndFFmpegReadWhatFFmpegPublished() async throws {
        let server = try await TestServer.start { $0.hub.republishGrace = .milliseconds(500) }
        defer { Task { await server.stop() } }
        let publishSeconds = 8.0
        let publisher = try Tool.publisher(url: "\(server.rtmpURL)/live/interop", seconds: publishSeconds, gop: 30)
        try await server.waitForStream(key)

        // Two recorders connected early keep everything until the stream ends; ffprobe looks at both protocols live.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("liveswarm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let flvFile = dir.appendingPathComponent("http.flv").path
        let rtmpFile = dir.appendingPathComponent("rtmp.flv").path
        let joinedAt = ContinuousClock.now
        let flvRecorder = try Tool("ffmpeg", ["-hide_banner", "-loglevel", "error", "-i", "\(server.httpURL)/live/interop.flv",
                                              "-c", "copy", "-f", "flv", flvFile])
        let rtmpRecorder = try Tool("ffmpeg", ["-hide_banner", "-loglevel", "error", "-i", "\(server.rtmpURL)/live/interop",
                                               "-c", "copy", "-f", "flv", rtmpFile])
        for url in ["\(server.httpURL)/live/interop.flv", "\(server.rtmpURL)/live/interop"] {
            let probe = try await Probe.run(url)
            #expect(probe.video?.codec_name == "h264", "\(url)")
            #expect(probe.video?.width == 640 && probe.video?.height == 360, "\(url)")
            #expect(probe.audio?.codec_name == "aac", "\(url)")
            #expect(probe.audio?.sample_rate == "44100", "\(url)")
        }
        let streams = server.swarm.hub.snapshot()
        #expect(streams.first?.viewers["http-flv"] ?? 0 >= 1)
        #expect(streams.first?.viewers["rtmp"] ?? 0 >= 1)

        #expect(await publisher.wait(timeout: .seconds(30)) == 0, "publisher: \(publisher.errorOutput)")
        #expect(await flvRecorder.wait(timeout: .seconds(20)) == 0, "HTTP-FLV recorder: \(flvRecorder.errorOutput)")
        #expect(await rtmpRecorder.wait(timeout: .seconds(20)) == 0, "RTMP recorder: \(rtmpRecorder.errorOutput)")
        let lateBy = Double((ContinuousClock.now - joinedAt).components.seconds)
        _ = lateBy

        for file in [flvFile, rtmpFile] {
            let probe = try await Probe.run(file)
            #expect(probe.video?.codec_name == "h264")
            #expect(probe.video?.width == 640 && probe.video?.height == 360)
            #expect(probe.audio?.codec_name == "aac")
            // The recorders joined within about a second of the start and got the cached GOP (1 s) first.
            let duration = try #require(probe.duration)
            #expect(duration > publishSeconds - 2.5 && duration < publishSeconds + 0.5, "\(file): \(duration) s")
            // Decoding everything gives no error at all.
            let t = try Tool("ffmpeg", ["-hide_banner", "-v", "error", "-i", file, "-f", "null", "-"])
            #expect(await t.wait() == 0)
            #expect(t.errorOutput.isEmpty, "decode errors in \(file): \(t.errorOutput.prefix(500))")
            print("recorded \(file.hasSuffix("http.flv") ? "HTTP-FLV" : "RTMP"): \(duration) s of \(publishSeconds) s published")
        }
    }

    @Test func midGOPViewerGetsAKeyframeAtOnce() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        // 10 s GOP at 30 fps.
        let publisher = try Tool.publisher(url: "\(server.rtmpURL)/live/interop", seconds: 12, gop: 300)
        defer { publisher.kill() }
        try await server.waitForStream(key)
        try await Task.sleep(for: .seconds(3))  // well into the GOP
        let start = ContinuousClock.now
        let viewer = try await FLVTestClient.open(port: server.ports.http, path: "/live/interop.flv")
        defer { Task { await viewer.close() } }
        #expect(viewer.status == 200)
        #expect(viewer.headers["access-control-allow-origin"] == "*")
        #expect(viewer.headers["content-type"] == "video/x-flv")
        let got = try await viewer.read(until: { $0.tags.contains(where: \.isVideoKeyframe) }, timeout: .seconds(5))
        let elapsed = ContinuousClock.now - start
        #expect(got)
        // Metadata and sequence headers come first, then the keyframe the GOP started with.
        #expect(viewer.tags.first?.tag.type == .script)
        #expect(viewer.tags.contains { $0.isVideoConfig })
        print("mid-GOP HTTP-FLV viewer: first complete keyframe after \(elapsed)")
        #expect(elapsed < .seconds(1))
    }

    @Test func viewerSurvivesPublisherRestart() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let first = try Tool.publisher(url: "\(server.rtmpURL)/live/interop", seconds: nil, gop: 30)
        try await server.waitForStream(key)
        let viewer = try await FLVTestClient.open(port: server.ports.http, path: "/live/interop.flv")
        defer { Task { await viewer.close() } }
        let reader = viewer.readInBackground()
        try await Task.sleep(for: .seconds(4))
        first.kill(SIGKILL)
        _ = await first.wait()
        try await Task.sleep(for: .milliseconds(1500))
        let second = try Tool.publisher(url: "\(server.rtmpURL)/live/interop", seconds: 4, gop: 30)
        defer { second.kill() }
        try await Task.sleep(for: .seconds(4))
        reader.cancel()
        _ = await reader.value

        // Split the viewer's tags into the two publishing sessions at the second session's sequence header.
        let media = viewer.tags.filter { $0.tag.type != .script }
        let configs = media.indices.filter { media[$0].isVideoConfig }
        #expect(configs.count == 2)
        let split = try #require(configs.last)
        #expect(media.count - split > 60, "the viewer kept receiving after the restart")
        let sessionA = media[..<split].filter { $0.tag.type == .video && !$0.isVideoConfig }
        let sessionB = media[split...].filter { $0.tag.type == .video && !$0.isVideoConfig }
        for (name, session) in [("first", sessionA), ("second", sessionB)] {
            // Within a session, video timestamps advance by one frame time (30 fps: 33 or 34 ms) at every frame.
            let steps = zip(session.dropFirst(), session).map { Int($0.tag.timestamp) - Int($1.tag.timestamp) }
            #expect(!steps.isEmpty && steps.allSatisfy { (33...34).contains($0) }, "\(name) session steps: \(Set(steps).sorted())")
            // And media time keeps pace with wall time over the session's last 2 s (ffmpeg's own start is bursty:
            // its muxer holds video until audio catches up).
            guard let end = session.last?.arrival else { Issue.record("\(name) session empty"); continue }
            let live = session.filter { $0.arrival > end - .seconds(2) }
            guard let a = live.first, let b = live.last else { Issue.record("\(name) session too short"); continue }
            let media = Double(b.tag.timestamp) - Double(a.tag.timestamp)
            let w = b.arrival - a.arrival
            let wall = Double(w.components.seconds) * 1000 + Double(w.components.attoseconds) / 1e15
            print("\(name) session: \(Int(media)) ms of media in \(Int(wall)) ms, \(session.count) video frames")
            #expect(abs(media - wall) < 0.25 * wall, "\(name) session: media \(media) ms vs wall \(wall) ms")
        }
        // Across the restart: never backwards, never ahead by more than the outage.
        let lastA = try #require(media[..<split].map(\.tag.timestamp).max())
        let firstB = try #require(media[split...].first?.tag.timestamp)
        let outage = try #require(media[split...].first).arrival - (try #require(media[..<split].last)).arrival
        let outageMs = Int64(outage.components.seconds) * 1000 + outage.components.attoseconds / 1_000_000_000_000_000
        print("restart: last timestamp \(lastA) ms, next \(firstB) ms, outage \(outageMs) ms")
        #expect(firstB >= lastA)
        // The hub measures the outage between frames it received; the viewer sees it shifted by delivery jitter.
        #expect(Int64(firstB) - Int64(lastA) <= outageMs + 300)
    }
}
