import Foundation
import Server
import Testing
import TestSupport

/// Headless Chromium plays a live stream through `web-demo/live-http` (Media Source Extensions fed with the
/// CMAF parts). The publisher draws its wall clock into every frame (`tools/glass-clock/publish.sh`) and the
/// page reads it back from each presented frame, so the delay measured is glass to glass.
@Suite(.serialized, .timeLimit(.minutes(10))) struct BrowserPlayerTests {

    struct Stats: Decodable {
        struct Player: Decodable {
            var delay: Double?
            var firstFrameMs: Double?
            var stalls: Int
            var stalledMs: Double
            var jumps: Int
            var skips: Int
            var partsFetched: Int
            var bitrateKbps: Double
            var errors: [String]
        }
        struct Clock: Decodable {
            struct Summary: Decodable {
                var decoded: Int
                var medianMs: Double?
                var p95Ms: Double?
                var minMs: Double?
                var maxMs: Double?
            }
            var framesSeen: Int
            var framesDecoded: Int
            var framesCorrupt: Int
            var fps: Double?
            var overall: Summary
        }
        /// The browser's `getVideoPlaybackQuality()`: frames decoded, and those it dropped for want of time.
        struct Frames: Decodable {
            var total: Int
            var dropped: Int
        }
        var player: Player
        var clock: Clock
        var frames: Frames?
        /// The share of decoded frames Chromium dropped (0 if it did not say).
        var droppedShare: Double { frames.map { $0.total > 0 ? Double($0.dropped) / Double($0.total) : 0 } ?? 0 }
        /// [wall-clock ms, player delay s] every 250 ms.
        var history: [[Double?]]?
        var resumedAt: Double?
    }

    /// Publishes the glass-clock stream and runs the page in Chromium for `seconds`.
    static func run(stream: String, seconds: Int, query: String = "", scripts: [String] = [], extraStats: String = "") async throws -> Stats {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let publisher = try Tool.executable("/bin/bash", [Tool.checkout.appendingPathComponent("tools/glass-clock/publish.sh").path,
                                                          "\(server.rtmpURL)/live/\(stream)", String(seconds + 20), "30"])
        defer { publisher.kill(SIGTERM) }
        try await server.waitUntil("a few CMAF parts", timeout: .seconds(20)) {
            (try? await HTTPGet.fetch(port: server.ports.http, "/live/\(stream)/index.m3u8"))?.text.contains("#EXTINF") == true
        }
        let driver = try Tool.drive(url: "\(server.httpURL)/live-http/?stream=live/\(stream)&clock=1\(query)", seconds: seconds,
                                    statsJS: "return Object.assign(window.liveStats(), {\(extraStats)})", scripts: scripts,
                                    sampleEvery: 5)
        return try await driver.jsonResult(Stats.self, timeout: .seconds(Int64(seconds) + 90))
    }

    /// The glass-to-glass goal is judged only on a machine that could run the test in real time: when the
    /// machine's CPUs were busy (by this test or anything else sharing it, `CPUSampler.starved`) and the browser
    /// could not even present the frames at 25 fps, the delay says nothing about the player. Such a run is repeated once; if the
    /// repeat is starved too, the delay is reported as not measured (a known issue in the test report) and only
    /// the checks that hold on any machine apply.
    /// 60 s until CI passed 45 minutes (2026-12-07): the median and p95 were steady (2.12 and 2.14 s) well before.
    static let nearTheEdgeSeconds = 30

    @Test func thirtySecondsNearTheLiveEdge() async throws {
        var attempt = 1
        while true {
            let cpu = CPUSampler()
            let stats = try await Self.run(stream: "g2g\(attempt)", seconds: Self.nearTheEdgeSeconds)
            let busy = cpu.busyFraction()
            let c = stats.clock, p = stats.player
            let presentedFPS = Double(c.framesSeen) / Double(Self.nearTheEdgeSeconds)
            let starved = CPUSampler.starved(busy: busy, presentedFPS: presentedFPS, droppedShare: stats.droppedShare)
            func s(_ ms: Double?) -> String { ms.map { String(format: "%.2f s", $0 / 1000) } ?? "-" }
            print("""
                live-http in Chromium, \(Self.nearTheEdgeSeconds) s, 1 s GOPs, target delay 2 s (attempt \(attempt)):
                  glass-to-glass median \(s(c.overall.medianMs)), p95 \(s(c.overall.p95Ms)), min \(s(c.overall.minMs)), max \(s(c.overall.maxMs))
                  frames presented \(c.framesSeen) (\(String(format: "%.1f", presentedFPS)) fps), decoded \(c.framesDecoded), corrupt \(c.framesCorrupt), \(c.fps ?? 0) fps at the end
                  the browser's count: \(stats.frames.map { "\($0.total) frames decoded, \($0.dropped) dropped" } ?? "-")
                  first frame \(p.firstFrameMs.map { "\(Int($0)) ms" } ?? "-"), stalls \(p.stalls) (\(Int(p.stalledMs)) ms), jumps \(p.jumps), skips \(p.skips)
                  parts fetched \(p.partsFetched), bitrate \(Int(p.bitrateKbps)) kbit/s, player errors \(p.errors)
                  machine CPUs \(Int(busy * 100)) % busy during the run\(starved ? ": starved, the delay is not a measure of the player" : "")
                """)
            #expect(c.framesCorrupt == 0)
            #expect(p.errors.isEmpty)
            if starved && attempt == 1 {
                attempt += 1
                continue
            }
            if starved {
                withKnownIssue("machine starved twice (CPUs \(Int(busy * 100)) % busy, \(presentedFPS) fps presented): glass-to-glass not judged", isIntermittent: true) {
                    #expect((c.overall.medianMs ?? .infinity) < 2500, "glass-to-glass median \(s(c.overall.medianMs))")
                }
                return
            }
            #expect(c.framesDecoded > Self.nearTheEdgeSeconds * 25, "decoded \(c.framesDecoded) frames in \(Self.nearTheEdgeSeconds) s")
            #expect((c.overall.medianMs ?? .infinity) < 2500, "glass-to-glass median \(s(c.overall.medianMs))")
            #expect((p.firstFrameMs ?? .infinity) < 2000)
            #expect(p.stalledMs < 1000, "stalled \(p.stalledMs) ms")
            return
        }
    }

    /// Paused for 15 s, then resumed: the player jumps or speeds up until it is within a second of its target
    /// delay, and must get there within 10 s of resuming and hold there for 5 s (holding it for the rest of a run is
    /// `thirtySecondsNearTheLiveEdge`'s to judge). Like the glass-to-glass test, the timing is judged only on a
    /// machine that kept up (`CPUSampler.starved`): a starved run that misses it is repeated once, and a starved
    /// repeat is reported as a known issue.
    @Test func viewerHeldBehindCatchesUp() async throws {
        for attempt in 1...2 {
            let cpu = CPUSampler()
            let result = try await Self.holdBehindAndResume(stream: "behind\(attempt)")
            let busy = cpu.busyFraction()
            let starved = CPUSampler.starved(busy: busy, presentedFPS: result.presentedFPS, droppedShare: result.droppedShare)
            print(String(format: "  machine CPUs %d %% busy during the run (attempt %d); %.1f frames presented a second while playing, "
                         + "%.1f %% dropped by Chromium%@", Int(busy * 100), attempt, result.presentedFPS, result.droppedShare * 100,
                         starved ? ": starved" : ""))
            #expect(result.before > 10, "the pause put the viewer behind")
            #expect(result.jumpsOrSkips >= 1)
            if let took = result.took, took <= 10 { return }
            if !starved {
                Issue.record("not back within a second of the target within 10 s (took \(result.took.map { "\($0) s" } ?? "never"))")
                return
            }
            if attempt == 2 {
                withKnownIssue("machine starved twice (CPUs \(Int(busy * 100)) % busy): catching up not judged", isIntermittent: true) {
                    #expect(result.took != nil && result.took! <= 10)
                }
            }
        }
    }

    static func holdBehindAndResume(stream: String) async throws
        -> (before: Double, took: Double?, jumpsOrSkips: Int, presentedFPS: Double, droppedShare: Double)
    {
        let pause = "document.querySelector('video').pause()"
        let resume = "window.__resumedAt = Date.now(); return document.querySelector('video').play().then(() => 'playing')"
        let stats = try await Self.run(stream: stream, seconds: 40, scripts: ["8:\(pause)", "23:\(resume)"],
                                       extraStats: "history: window.livePlayer.history, resumedAt: window.__resumedAt")
        let resumedAt = try #require(stats.resumedAt)
        let history = (stats.history ?? []).compactMap { h -> (Double, Double)? in
            guard h.count >= 2, let t = h[0], let d = h[1] else { return nil }
            return (t, d)
        }
        let before = history.last { $0.0 < resumedAt }?.1 ?? 0
        let after = history.filter { $0.0 >= resumedAt }
        // The first moment from which the delay stays within a second of the 2 s target for 5 s (to the end of the
        // run if that comes first).
        let settled = after.indices.first { i in
            after[i...].prefix { $0.0 <= after[i].0 + 5000 }.allSatisfy { abs($0.1 - 2) <= 1 }
        }.map { after[$0].0 }
        let took = settled.map { ($0 - resumedAt) / 1000 }
        print("""
            paused 15 s: delay \(String(format: "%.1f", before)) s when resumed; back within 1 s of the 2 s target (for 5 s) after \
            \(took.map { String(format: "%.2f s", $0) } ?? "never"); jumps \(stats.player.jumps), skips \(stats.player.skips)
            delay after resuming, every 250 ms (s): \(after.map { String(format: "%.1f", $0.1) }.joined(separator: " "))
            """)
        // Played 40 s less the 15 s pause.
        return (before, took, stats.player.jumps + stats.player.skips, Double(stats.clock.framesSeen) / 25, stats.droppedShare)
    }

    /// The page's switch to the browser's own HLS player, on both playlists: it plays them (no corrupt frame) and
    /// shows, by the same clock, how far behind a player without the low-latency features sits.
    @Test(arguments: ["nativeTs", "nativeCmaf"])
    func nativeHLSForComparison(button: String) async throws {
        let stats = try await Self.run(stream: "native", seconds: 20, query: "&autoplay=0",
                                       scripts: ["0.5:document.getElementById('\(button)').click()"])
        let c = stats.clock
        print("Chromium's own HLS player (\(button)): glass-to-glass median "
              + String(format: "%.2f s, p95 %.2f s", (c.overall.medianMs ?? 0) / 1000, (c.overall.p95Ms ?? 0) / 1000)
              + ", \(c.framesDecoded) frames decoded, \(c.framesCorrupt) corrupt")
        // Chromium's own player takes seconds to start; it must then keep playing (150 frames: 7.5 fps over the
        // 20 s, start included, seen on a loaded machine; an idle one shows 440-510).
        #expect(c.framesDecoded > 150)
        #expect(c.framesCorrupt == 0)
    }
}

/// How busy the machine's CPUs were between creation and ``busyFraction()``, from /proc/stat (all processes,
/// not only this one). 0 where /proc/stat cannot be read.
struct CPUSampler {
    let start: (busy: Double, total: Double)?
    init() { start = Self.read() }

    static func read() -> (busy: Double, total: Double)? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = text.split(separator: "\n").first, line.hasPrefix("cpu ") else { return nil }
        let v = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        guard v.count >= 5 else { return nil }
        // user nice system idle iowait irq softirq steal: niced time counts as idle, since what runs niced (CI's
        // AddressSanitizer and fuzz builds beside these suites, at nice 19 and SCHED_IDLE) gives way to the tests.
        let idle = v[1] + v[3] + v[4]
        let total = v.prefix(8).reduce(0, +)
        return (total - idle, total)
    }

    /// The house rule for timing judged in a browser on this shared 2-core machine: a run is starved when the page
    /// could not even present the frames in real time (under 25 fps) while the machine's CPUs were 70 % busy or more
    /// (Chromium's decoder and compositor take about one core of the two, ffmpeg and the server most of the rest),
    /// or while Chromium itself said it lacked the time: it dropped 5 % or more of the frames it decoded
    /// (`getVideoPlaybackQuality`; 1-1.5 % on an idle machine, 7 % with one core taken by a busy loop). The CPUs'
    /// average over a run hides a renderer thread that had no core for seconds at a time: one CI run presented
    /// 22.9 fps with the CPUs 67 % busy. A starved run is repeated once, and a starved repeat is reported as a known
    /// issue.
    static func starved(busy: Double, presentedFPS: Double, droppedShare: Double = 0) -> Bool {
        presentedFPS < 25 && (busy >= 0.7 || droppedShare >= 0.05)
    }

    /// The house rule's second chance: runs `attempt(1)`; if `isStarved` says that run was starved, hands it to
    /// `setAside` (to print it) and runs `attempt(2)`. Returns the run to judge.
    static func againIfStarved<Run>(_ attempt: (Int) async throws -> Run, isStarved: (Run) -> Bool,
                                    setAside: (Run) -> Void) async throws -> Run {
        let first = try await attempt(1)
        guard isStarved(first) else { return first }
        setAside(first)
        return try await attempt(2)
    }

    /// Timing checks under the house rule: judged as they are, or, when the run to judge was starved too, reported
    /// as an intermittent known issue saying `why`.
    static func judgeTiming(starved: Bool, _ why: String, _ checks: () -> Void) {
        if starved { withKnownIssue(Comment(rawValue: why), isIntermittent: true, checks) } else { checks() }
    }

    func busyFraction() -> Double {
        guard let a = start, let b = Self.read(), b.total > a.total else { return 0 }
        return (b.busy - a.busy) / (b.total - a.total)
    }
}
