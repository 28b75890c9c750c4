import Foundation
import Server
import Testing
import TestSupport

/// RTMP to WebRTC with real peers: ffmpeg publishes the glass-clock stream (`tools/glass-clock/publish.sh`, x264 High
/// profile) over RTMP, and headless Chromium plays it through WHEP on `web-demo/live`. The page reads the publisher's
/// wall clock from every presented frame: each must be intact (CRC) and later than the one before, and the delay is
/// glass to glass.
@Suite(.serialized, .timeLimit(.minutes(10))) struct BrowserBridgeTests {

    struct Stats: Decodable {
        struct Player: Decodable {
            var startedAt: Double?
            var firstFrameMs: Double?
            var framesDecoded: Int?
            var keyFramesDecoded: Int?
            var fps: Double?
            var ssrc: Double?
            var ssrcChanges: Int?
            var packetsLost: Int?
            var packetsReceived: Int?
            var nackCount: Int?
            var framesDropped: Int?
            var freezeCount: Int?
            var pliCount: Int?
            var codec: String?
            var frameWidth: Int?
            var frameHeight: Int?
            var error: String?
        }
        struct Clock: Decodable {
            var framesSeen: Int
            var framesDecoded: Int
            var framesCorrupt: Int
            var backwards: Int
            var repeats: Int
        }
        struct Sample: Decodable {
            var displayMs: Double
            var ok: Bool
            var reason: String?
            var encodedMs: Double?
            var delayMs: Double?
            var minMargin: Double?
            var mediaTime: Double?
            var rawMs: Double?
            var rawCrc: Int?
        }
        var player: Player?
        var clock: Clock?
        var samples: [Sample]
        /// [wall ms, framesDecoded, packetsReceived, packetsLost, ssrc] every 500 ms.
        var history: [[Double?]]
    }

    struct BridgeAPI: Decodable {
        struct Delay: Decodable {
            var samples: Int
            var p50Ms: Double?
            var p99Ms: Double?
            var maxMs: Double?
        }
        struct Stream: Decodable {
            var stream: String
            var framesSent: Int
            var nonReferenceDropped: Int
            var reorderDropped: Int
            var warnings: [String]
            var caughtUpAfterMs: [Double]
            var firstPictureBehindMs: [Int]
        }
        var bridged: [Stream]
        var bridgeVideoDelay: Delay
    }

    static func publish(_ server: TestServer, _ stream: String, seconds: Int, gop: Int, environment: [String: String] = [:]) throws -> Tool {
        let tool = try Tool.executable("/usr/bin/env", environment.map { "\($0)=\($1)" } + [
            "/bin/bash", Tool.checkout.appendingPathComponent("tools/glass-clock/publish.sh").path,
            "\(server.rtmpURL)/live/\(stream)", String(seconds), String(gop)])
        return tool
    }

    static func play(_ server: TestServer, _ stream: String, seconds: Int) throws -> Tool {
        try Tool.drive(url: "\(server.httpURL)/live/?stream=live/\(stream)&clock=1", seconds: seconds,
                       statsJS: "return window.liveStats(true)", sampleEvery: 0)
    }

    static func api(_ server: TestServer) async throws -> BridgeAPI {
        try JSONDecoder().decode(BridgeAPI.self, from: Data(try await HTTPGet.fetch(port: server.ports.http, "/api/v1/webrtc/streams").text.utf8))
    }

    /// What the samples say: when the delay first reached the live one (within 100 ms of the median of the last 5 s)
    /// and stayed there for the next second of frames (the median of the next 30), in ms from the page's start; and the
    /// glass-to-glass median and 95th percentile from then on.
    static func settle(_ s: Stats) -> (liveAfterMs: Double?, median: Double?, p95: Double?) {
        let ok = s.samples.filter { $0.ok && $0.delayMs != nil }
        guard let last = ok.last, let start = s.player?.startedAt else { return (nil, nil, nil) }
        let tail = ok.filter { $0.displayMs >= last.displayMs - 5000 }.map { $0.delayMs! }.sorted()
        let limit = tail[tail.count / 2] + 100
        let from = ok.indices.first { i in
            let next = ok[i..<min(ok.count, i + 30)].map { $0.delayMs! }.sorted()
            return ok[i].delayMs! <= limit && next[next.count / 2] <= limit
        }
        guard let from else { return (nil, nil, nil) }
        let settled = ok[from...].map { $0.delayMs! }.sorted()
        return (ok[from].displayMs - start, settled[settled.count / 2], settled[min(settled.count - 1, settled.count * 95 / 100)])
    }

    static func report(_ label: String, _ s: Stats, seconds: Int, busy: Double, api: BridgeAPI?) -> String {
        let c = s.clock, p = s.player
        let (live, median, p95) = settle(s)
        func ms(_ v: Double?) -> String { v.map { "\(Int($0.rounded())) ms" } ?? "-" }
        return """
            \(label) (\(seconds) s, \(p?.codec ?? "-")):
              frames presented \(c?.framesSeen ?? 0) (\(String(format: "%.1f", Double(c?.framesSeen ?? 0) / Double(seconds))) fps), \
            read \(c?.framesDecoded ?? 0), corrupt \(c?.framesCorrupt ?? -1), out of order \(c?.backwards ?? -1); decoded \(p?.framesDecoded ?? 0) \
            (keyframes \(p?.keyFramesDecoded ?? 0)), \(p?.fps ?? 0) fps at the end, PLIs \(p?.pliCount ?? 0)
              first frame \(ms(p?.firstFrameMs)) after the page started; at the live delay after \(ms(live)); \
            glass-to-glass from then: median \(ms(median)), p95 \(ms(p95))
              server-added video delay (hub to its SRTP packets handed to the socket): p50 \(ms(api?.bridgeVideoDelay.p50Ms.map { $0 })) \
            [\(String(format: "%.2f", api?.bridgeVideoDelay.p50Ms ?? 0))], p99 \(String(format: "%.2f ms", api?.bridgeVideoDelay.p99Ms ?? 0)) \
            over \(api?.bridgeVideoDelay.samples ?? 0) frames
              machine CPUs \(Int(busy * 100)) % busy; packets lost \(p?.packetsLost ?? -1), NACKs \(p?.nackCount ?? -1), \
            frames dropped by the browser \(p?.framesDropped ?? -1), freezes \(p?.freezeCount ?? -1)
            """ + unreadable(s)
    }

    /// Every presented frame intact and later than the one before.
    /// - Chromium may present an all-black frame before the stream's first picture (seen at media time 0); the
    ///   publisher never draws an all-black strip (its clock has 1 bits), so such a frame is the browser's, not the
    ///   stream's, and is only reported.
    /// - A decoding error shows on the pictures after it too (they are predicted from it) until the next keyframe;
    ///   one unreadable frame between two readable ones a frame apart is the reader's, not the stream's. Such frames,
    ///   at most one per 10 s, are a known issue, reported with their details.
    /// - Anything else fails.
    static func expectIntact(_ s: Stats, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let c = s.clock else {
            Issue.record("no clock statistics", sourceLocation: sourceLocation)
            return
        }
        #expect(c.backwards == 0, "pictures out of order", sourceLocation: sourceLocation)
        let firstRead = s.samples.firstIndex { $0.ok } ?? s.samples.count
        let bad = s.samples.indices.filter { !s.samples[$0].ok && s.samples[$0].reason != "nopicture" }
        let black = bad.filter { $0 < firstRead && s.samples[$0].rawMs == 0 && s.samples[$0].rawCrc == 0 }
        let rest = bad.filter { !black.contains($0) }
        if !black.isEmpty { print("  all-black frames before the first picture (the browser's): \(black.count)") }
        guard !rest.isEmpty else { return }
        let isolated = rest.allSatisfy { i in
            guard i > 0, i + 1 < s.samples.count, s.samples[i - 1].ok, s.samples[i + 1].ok,
                  let before = s.samples[i - 1].encodedMs, let after = s.samples[i + 1].encodedMs else { return false }
            return after - before <= 70
        }
        let seconds = ((s.samples.last?.displayMs ?? 0) - (s.samples.first?.displayMs ?? 0)) / 1000
        if isolated && Double(rest.count) <= max(1, seconds / 10) {
            withKnownIssue("isolated unreadable frames (the reader's, not the stream's): \(unreadable(s))", isIntermittent: true) {
                #expect(rest.isEmpty, sourceLocation: sourceLocation)
            }
        } else {
            Issue.record("corrupt frames: \(rest.count)\(unreadable(s))", sourceLocation: sourceLocation)
        }
    }

    /// Each frame the clock could not read, with its neighbours: when (ms after the page started), why, how close
    /// the weakest cell was to the threshold, and the times the neighbours carried.
    static func unreadable(_ s: Stats) -> String {
        let start = s.player?.startedAt ?? 0
        return s.samples.indices.filter { !s.samples[$0].ok && s.samples[$0].reason != "nopicture" }.prefix(5).map { i in
            let around = s.samples[max(0, i - 2)...min(s.samples.count - 1, i + 2)].map { x in
                "\(Int(x.displayMs - start)) ms: \(x.ok ? "read \(Int(x.encodedMs ?? 0) % 100_000)" : x.reason ?? "?") margin \(Int(x.minMargin ?? -1)) media \(x.mediaTime ?? -1)"
            }
            return "\n  unreadable frame \(i): " + around.joined(separator: " | ")
        }.joined()
    }

    /// x264 `-tune zerolatency` (High profile, 1 s GOPs): every frame intact and in order at 30 fps, glass to glass
    /// under 250 ms on loopback (judged on a machine that kept up, the house rule of BrowserPlayerTests).
    @Test func zeroLatencyStreamPlaysNearTheLiveEdge() async throws {
        for attempt in 1...2 {
            let server = try await TestServer.start()
            defer { Task { await server.stop() } }
            let cpu = CPUSampler()
            let publisher = try Self.publish(server, "zl", seconds: 50, gop: 30)
            defer { publisher.kill(SIGTERM) }
            try await server.waitForStream(.init(app: "live", stream: "zl")!)
            let stats = try await Self.play(server, "zl", seconds: 20).jsonResult(Stats.self, timeout: .seconds(110))
            let busy = cpu.busyFraction()
            let api = try? await Self.api(server)
            print(Self.report("RTMP (x264 zerolatency) to WebRTC in Chromium, attempt \(attempt)", stats, seconds: 20, busy: busy, api: api))
            let c = try #require(stats.clock)
            #expect(stats.player?.error == nil)
            #expect(stats.player?.codec?.contains("H264") == true)
            Self.expectIntact(stats)
            let (_, median, _) = Self.settle(stats)
            let starved = CPUSampler.starved(busy: busy, presentedFPS: Double(c.framesSeen) / 20)
            if starved && attempt == 1 { continue }
            if starved {
                withKnownIssue("machine starved twice (CPUs \(Int(busy * 100)) % busy): glass-to-glass not judged", isIntermittent: true) {
                    #expect((median ?? .infinity) < 250)
                }
                return
            }
            #expect(c.framesDecoded > 20 * 25, "read \(c.framesDecoded) frames in 20 s")
            #expect((median ?? .infinity) < 250, "glass-to-glass median \(median ?? -1) ms")
            #expect((api?.bridgeVideoDelay.samples ?? 0) > 300)
            return
        }
    }

    /// 4 s GOPs without B-frames; the viewer joins 2.5 s into a GOP. Its first picture is the cached keyframe (not
    /// the encoder's next one, 1.5 s later), and the cached pictures are played faster until the delay is the live
    /// one. The page itself waits for a GOP to start (the hub's GOP cache shrinks) and then 2.5 s before it plays,
    /// so Chromium's start-up time does not move the join.
    @Test func viewerJoiningMidGOPStartsAtOnceAndCatchesUp() async throws {
        let joinMidGOP = """
            (async () => {
              let last = 0;
              for (;;) {
                const s = (await (await fetch('/api/v1/streams')).json()).streams.find((x) => x.stream === 'gop4');
                const n = s ? s.gopCacheFrames : 0;
                if (n < last) break;
                last = n;
                await new Promise((r) => setTimeout(r, 40));
              }
              setTimeout(play, 2500);
            })();
            return 'waiting for a GOP'
            """
        for attempt in 1...2 {
            let server = try await TestServer.start()
            defer { Task { await server.stop() } }
            let cpu = CPUSampler()
            let publisher = try Self.publish(server, "gop4", seconds: 50, gop: 120)
            defer { publisher.kill(SIGTERM) }
            try await server.waitForStream(.init(app: "live", stream: "gop4")!)
            let page = try Tool.drive(url: "\(server.httpURL)/live/?stream=live/gop4&clock=1&autoplay=0", seconds: 18,
                                      statsJS: "return window.liveStats(true)", scripts: ["0:\(joinMidGOP)"])
            let stats = try await page.jsonResult(Stats.self, timeout: .seconds(100))
            let busy = cpu.busyFraction()
            let api = try? await Self.api(server)
            // Seconds of playing: from the first frame presented to the last.
            let playing = max(1, ((stats.samples.last?.displayMs ?? 0) - (stats.samples.first?.displayMs ?? 0)) / 1000)
            print(Self.report("RTMP (4 s GOP) to WebRTC, joining mid-GOP, attempt \(attempt)", stats, seconds: Int(playing.rounded()),
                              busy: busy, api: api))
            let behind = api?.bridged.first?.firstPictureBehindMs.first ?? 0
            print("  server: first picture (the cached keyframe) \(behind) ms behind the live edge; caught up " +
                  "\(api?.bridged.first?.caughtUpAfterMs.map { "\(Int($0)) ms" } ?? []) after DTLS")
            let c = try #require(stats.clock)
            Self.expectIntact(stats)
            let first = stats.player?.firstFrameMs ?? .infinity
            let (live, _, _) = Self.settle(stats)
            let starved = CPUSampler.starved(busy: busy, presentedFPS: Double(c.framesSeen) / playing)
            let missed = first >= 500 || (live ?? .infinity) >= 3000
            // A join that did not land mid-GOP (the page's timer late on a loaded machine) proves nothing: once more.
            if attempt == 1 && (behind <= 1000 || (starved && missed)) { continue }
            #expect(behind > 1000, "the viewer joined mid-GOP")
            if starved && missed {
                withKnownIssue("machine starved twice: start and catch-up not judged", isIntermittent: true) {
                    #expect(!missed)
                }
                return
            }
            #expect(first < 500, "first frame \(first) ms")
            #expect((live ?? .infinity) < 3000, "at the live delay after \(live ?? -1) ms")
            return
        }
    }

    /// x264's defaults have B-frames. Chromium's WebRTC decoder cannot reorder pictures, so what it is sent must need
    /// no reordering: with b-pyramid (x264's default) keyframes only, without it every I and P picture. Either way no
    /// frame is corrupt or out of order, and the API says what viewers miss. A keyframe every 2 s: keyframes only
    /// are then about 10 pictures in the 20 s, so "at least 4 shown" stays true on a starved machine (every 4 s, CI
    /// read 3 once with the first picture 2.9 s late and the CPUs 99 % busy).
    @Test(arguments: [("default", ""), ("no b-pyramid", "-x264-params b-pyramid=none")])
    func bFramesNeverReachChromiumReordered(label: String, x264: String) async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let publisher = try Self.publish(server, "bf", seconds: 45, gop: 60, environment: ["TUNE": "none", "EXTRA_VIDEO_ARGS": x264])
        defer { publisher.kill(SIGTERM) }
        try await server.waitForStream(.init(app: "live", stream: "bf")!)
        let cpu = CPUSampler()
        let stats = try await Self.play(server, "bf", seconds: 20).jsonResult(Stats.self, timeout: .seconds(110))
        let api = try await Self.api(server)
        print(Self.report("RTMP (x264 B-frames, \(label)) to WebRTC", stats, seconds: 20, busy: cpu.busyFraction(), api: api))
        let b = try #require(api.bridged.first)
        print("  bridge: \(b.framesSent) pictures sent, \(b.nonReferenceDropped) non-reference left out, \(b.reorderDropped) left out for reordering")
        let c = try #require(stats.clock)
        Self.expectIntact(stats)
        #expect(c.framesDecoded >= 4, "pictures shown: \(c.framesDecoded)")
        #expect(b.nonReferenceDropped > 0 && b.warnings.contains { $0.contains("B-frames") })
        if x264.isEmpty {
            #expect(b.reorderDropped > 0 && b.warnings.contains { $0.contains("keyframes only") })
        } else {
            #expect(b.reorderDropped == 0 && c.framesDecoded > 20 * 5, "I and P pictures at several per second")
        }
    }

    /// The publisher is killed and a new one publishes 2 s later, at another resolution: the page keeps its RTP
    /// stream (one SSRC, no packets counted lost), shows the new session's pictures within a second of its publish,
    /// and follows the new size.
    @Test func viewerResumesAfterThePublisherRestarts() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let first = try Self.publish(server, "again", seconds: 60, gop: 30)
        defer { first.kill(SIGKILL) }
        try await server.waitForStream(.init(app: "live", stream: "again")!)
        let page = try Self.play(server, "again", seconds: 20)
        try await Task.sleep(for: .seconds(8))
        first.kill(SIGKILL)
        let killedAt = Date().timeIntervalSince1970 * 1000
        try await Task.sleep(for: .seconds(2))
        let second = try Self.publish(server, "again", seconds: 30, gop: 30, environment: ["SIZE": "960x540"])
        defer { second.kill(SIGTERM) }
        try await server.waitUntil("the second publisher") { server.swarm.hub.snapshot().first { $0.stream == "again" }?.sessions == 2 }
        // When the hub accepted the new publish (its uptime counts from there), on the wall clock the page uses.
        let uptime = server.swarm.hub.snapshot().first { $0.stream == "again" }?.uptimeSeconds ?? 0
        let publishedAt = Date().timeIntervalSince1970 * 1000 - uptime * 1000
        let stats = try await page.jsonResult(Stats.self, timeout: .seconds(110))
        let resumed = stats.samples.first { $0.ok && ($0.encodedMs ?? 0) > killedAt }
        let resumeMs = resumed.map { $0.displayMs - publishedAt }
        let ssrcs = Set(stats.history.compactMap { $0.count > 4 ? $0[4] : nil })
        let before = stats.history.last { ($0.first ?? 0) ?? 0 < killedAt }
        print("""
            publisher restart: new session published \(Int(publishedAt - killedAt)) ms after the kill; first new picture shown \
            \(resumeMs.map { "\(Int($0)) ms" } ?? "never") after it
              SSRCs seen \(ssrcs.count), packets lost \(stats.player?.packetsLost ?? -1) of \(stats.player?.packetsReceived ?? 0), \
            frames decoded \(before.flatMap { $0[1] }.map { Int($0) } ?? 0) before the kill, \(stats.player?.framesDecoded ?? 0) at the end, \
            corrupt \(stats.clock?.framesCorrupt ?? -1), out of order \(stats.clock?.backwards ?? -1); \
            size at the end \(stats.player?.frameWidth ?? 0)x\(stats.player?.frameHeight ?? 0) (640x360 before)
            """)
        #expect(ssrcs.count == 1 && (stats.player?.ssrcChanges ?? 0) == 0)
        #expect((stats.player?.packetsLost ?? 99) <= 5, "sequence numbers continue across the republish")
        Self.expectIntact(stats)
        #expect((resumeMs ?? .infinity) < 1000, "resumed \(resumeMs ?? -1) ms after the new publish")
        #expect(stats.player?.frameWidth == 960 && stats.player?.frameHeight == 540, "the viewer follows the new resolution")
    }
}
