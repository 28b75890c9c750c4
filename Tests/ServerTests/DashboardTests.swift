import Foundation
import Metrics
import NIOCore
import Prometheus
import StreamHub
import Locks
@testable import Server
import Testing
import TestSupport

/// The operator dashboard's server side: the rings, the viewer counts, the readable counters, `/api/v1/dashboard`
/// and its events against real ffmpeg viewers, and the Grafana dashboard's metrics.
@Suite(.serialized, .timeLimit(.minutes(3))) struct DashboardTests {
    // MARK: - Units

    @Test func aRingHoldsItsMemoryFromTheFirstRowAndKeepsTheNewest() {
        var ring = SeriesRing(columns: 3, capacity: 3600)
        let empty = ring.storageBytes
        #expect(empty >= 3600 * (3 * 4 + 8))
        for i in 0..<7200 {
            ring.append(time: Double(i), [Float(i), .nan, 1])
            if i == 10 || i == 3599 || i == 7199 { #expect(ring.storageBytes == empty, "after \(i + 1) rows") }
        }
        #expect(ring.count == 3600)
        let rows = ring.rows(last: 3)
        #expect(rows.map(\.time) == [7197, 7198, 7199])
        #expect(rows.map { $0.values.first } == [7197, 7198, 7199])
        #expect(rows.allSatisfy { $0.values.dropFirst().first?.isNaN == true })
        #expect(ring.rows().first?.time == 3600)
    }

    @Test func anHLSViewerIsAClientThatLoadedAPlaylistInTheLastTenSeconds() {
        let now = Mutex(1000.0)
        let audience = HLSAudience(clock: { now.withLock { $0 } })
        let key = StreamKey(app: "live", stream: "a")!
        audience.playlist(key, .cmaf, client: ("v1", true), bytes: 300)
        audience.playlist(key, .ts, client: ("v1", true), bytes: 200)          // the same client on both renditions: two viewers
        audience.media(key, .cmaf, client: ("v1", true), bytes: 5000)
        audience.media(key, .cmaf, client: ("10.0.0.9 curl", false), bytes: 7000) // media without a playlist: no viewer
        var viewers = audience.snapshot()[key] ?? []
        #expect(viewers.map { "\($0.id) \($0.protocol.rawValue) \($0.mediaBytes)" } == ["v1 hls 0", "v1 ll-hls 5000"])
        now.withLock { $0 += 9 }
        audience.playlist(key, .cmaf, client: ("v1", true), bytes: 300)
        now.withLock { $0 += 2 }
        viewers = audience.snapshot()[key] ?? []
        #expect(viewers.map(\.protocol) == [.cmaf] && viewers.first?.playlists == 2 && viewers.first?.playlistBytes == 600)
        now.withLock { $0 += 11 }
        #expect(audience.snapshot()[key] == nil, "gone 10 s after its last playlist, and the stream with it")
        // A flood of made-up ids stops at the bound.
        for i in 0..<(HLSAudience.maxViewersPerStream + 50) { audience.playlist(key, .cmaf, client: ("id\(i)", true), bytes: 1) }
        #expect(audience.snapshot()[key]?.count == HLSAudience.maxViewersPerStream)
    }

    @Test func processFiguresReadACommandNameWithSpacesAndParentheses() throws {
        let stat = "4242 (live swarm (x)) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 12 0 100 1000000 2000 18446744073709551615"
        let f = try #require(ProcessFigures.parse(stat: stat, statm: "5000 2000 300 10 0 900 0\n"))
        #expect(f.cpuSeconds == 300 / ProcessFigures.ticksPerSecond)
        #expect(f.residentBytes == 2000 * ProcessFigures.pageSize)
        #expect(ProcessFigures.parse(stat: "garbage", statm: "1") == nil)
        #expect(ProcessFigures.current() != nil)
    }

    /// What the soak samples: descriptors, threads and glibc's heap, read at each scrape. 64 MiB held by the test
    /// show in the heap in use (other tests allocate and free beside this one: 48 MiB is the floor).
    @Test func theScrapeShowsDescriptorsThreadsAndTheHeap() throws {
        #expect(ProcessResources.threads(status: "Name:\tliveswarm\nThreads:\t12\nSigQ:\t0/1\n") == 12)
        #expect(ProcessResources.threads(status: "Name:\tx\n") == nil)
        let before = try #require(ProcessResources.current())
        #expect(before.threads >= 1 && before.openDescriptors >= 3)
        // Under AddressSanitizer malloc is ASan's, and mallinfo2 says nothing of it.
        guard dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__asan_init") == nil else { return }
        #expect(before.heap.in_use > 0 && before.heap.from_system >= before.heap.in_use)
        let held = UnsafeMutableRawPointer.allocate(byteCount: 64 << 20, alignment: 16)
        defer { held.deallocate() }
        let after = try #require(ProcessResources.current())
        #expect(Int(after.heap.in_use) - Int(before.heap.in_use) >= 48 << 20, "heap in use \(before.heap.in_use) then \(after.heap.in_use)")
    }

    @Test func countersReadBackWhatPrometheusExports() {
        let registry = PrometheusCollectorRegistry()
        let factory = ReadableMetricsFactory(base: PrometheusMetricsFactory(registry: registry))
        let a = Counter(label: "liveswarm_bytes_sent_total", dimensions: [("protocol", "rtmp")], factory: factory)
        let again = Counter(label: "liveswarm_bytes_sent_total", dimensions: [("protocol", "rtmp")], factory: factory)
        a.increment(by: 1000)
        again.increment(by: 234)
        Counter(label: "liveswarm_bytes_sent_total", dimensions: [("protocol", "http-flv")], factory: factory).increment(by: 7)
        #expect(factory.total("liveswarm_bytes_sent_total", [("protocol", "rtmp")]) == 1234)
        #expect(factory.total("liveswarm_bytes_sent_total", [("protocol", "http-flv")]) == 7)
        #expect(factory.total("liveswarm_bytes_sent_total", [("protocol", "hls")]) == 0)
        let text = String(decoding: registry.emitToBuffer(), as: UTF8.self)
        #expect(text.contains(#"liveswarm_bytes_sent_total{protocol="rtmp"} 1234"#), "\(text)")
    }

    // MARK: - Against real viewers

    struct History: Decodable {
        struct Frame: Decodable {
            struct Stream: Decodable {
                var stream: String
                var live: Bool
                var publisher: String?
                var videoCodec: String?
                var width: Int?
                var bitrate: Int
                var viewers: [String: Int]
                struct P2P: Decodable { var enabled: Bool }
                var p2p: P2P
            }
            var time: Double
            var viewers: [String: Int]
            var egress: [String: Double]
            var streams: [Stream]
        }
        struct Series: Decodable { var time: [Double]; var rows: [[Float?]] }
        struct Columns: Decodable { var server: [String]; var stream: [String] }
        var columns: Columns
        var frame: Frame?
        var server: Series
        var streams: [String: Series]
    }

    static func history(_ server: TestServer, seconds: Int = 60) async throws -> History {
        let r = try await HTTPGet.fetch(port: server.ports.http, "/api/v1/dashboard?seconds=\(seconds)")
        return try JSONDecoder().decode(History.self, from: r.body)
    }

    static func viewers(_ server: TestServer, _ stream: String) async throws -> [String: Int]? {
        try await history(server).frame?.streams.first { $0.stream == stream }?.viewers
    }

    /// One viewer of each kind ffmpeg can be (RTMP, HTTP-FLV, HLS, LL-HLS) and one P2P viewer reporting: each counted
    /// once under its own protocol; bytes flow in the rates; a viewer that leaves is gone from the count within 3 s.
    @Test func everyKindOfViewerIsCountedOnceAndALeaverWithinThreeSeconds() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let publisher = try Tool.publisher(url: "\(server.rtmpURL)/live/dash", seconds: 40, size: "320x240")
        defer { publisher.kill() }
        try await server.waitForStream(.init(app: "live", stream: "dash")!)
        // ffmpeg is no LL-HLS client: given a playlist of parts alone (the stream's first second) it finds an empty
        // segment and quits. It starts once a whole segment is listed.
        try await server.waitUntil("a whole segment in both HLS playlists", timeout: .seconds(15)) {
            let ll = try? await HTTPGet.fetch(port: server.ports.http, "/live/dash/index.m3u8")
            let ts = try? await HTTPGet.fetch(port: server.ports.http, "/live/dash.m3u8")
            return ll?.text.contains("#EXTINF") == true && ts?.status == 200
        }
        func viewer(_ url: String) throws -> Tool {
            try Tool("ffmpeg", ["-hide_banner", "-loglevel", "error", "-i", url, "-t", "30", "-f", "null", "-"])
        }
        let rtmp = try viewer("\(server.rtmpURL)/live/dash")
        let flv = try viewer("\(server.httpURL)/live/dash.flv")
        let hls = try viewer("\(server.httpURL)/live/dash.m3u8")
        let llhls = try viewer("\(server.httpURL)/live/dash/index.m3u8")
        defer { for t in [rtmp, flv, hls, llhls] { t.kill() } }
        // A P2P viewer: its reports name it, and its playlist requests carry the same id (as /p2p/ does).
        let report = #"{"stream":"live/dash","viewer":"p2p-viewer-1","p2p":true,"delay":2.5,"stalls":1,"stalledMs":300,"# +
            #""firstFrameMs":900,"originBytes":1000,"peerBytes":5000,"uploadedBytes":0,"neighbours":1}"#
        let expected = ["rtmp": 1, "http-flv": 1, "hls": 1, "ll-hls": 1, "whep": 0, "p2p": 1]
        var seen: [String: Int]?
        do {
            try await server.waitUntil("one viewer of each kind", timeout: .seconds(20)) {
                _ = try await HTTPGet.fetch(port: server.ports.http, "/api/v1/p2p/reports", method: "POST", body: report)
                _ = try await HTTPGet.fetch(port: server.ports.http, "/live/dash/index.m3u8?viewer=p2p-viewer-1")
                seen = try await Self.viewers(server, "live/dash")
                return seen == expected
            }
        } catch {
            throw TestFailure("\(error): the last count was \(seen ?? [:]); HLS: \(hls.errorOutput.suffix(500)); LL-HLS: \(llhls.errorOutput.suffix(500))")
        }
        let h = try await Self.history(server)
        let frame = try #require(h.frame)
        let row = try #require(frame.streams.first { $0.stream == "live/dash" })
        #expect(row.live && row.publisher == "rtmp" && row.videoCodec?.hasPrefix("avc1.") == true && row.width == 320 && row.bitrate > 0)
        #expect(frame.viewers == expected)
        for p in ["rtmp", "http-flv"] { #expect((frame.egress[p] ?? 0) > 0, "\(p): \(frame.egress)") }
        // The rings: a row a second for the server and the stream, with the columns named.
        #expect(h.server.rows.count >= 3 && h.server.rows.allSatisfy { $0.count == h.columns.server.count })
        let ring = try #require(h.streams["live/dash"])
        let rtmpColumn = try #require(h.columns.stream.firstIndex(of: "viewers.rtmp"))
        #expect(ring.rows.last?[rtmpColumn] == 1)
        // The same counts in /metrics.
        let metrics = try await HTTPGet.fetch(port: server.ports.http, "/metrics").text
        for (p, n) in expected { #expect(metrics.contains(#"liveswarm_viewers{protocol="\#(p)"} \#(n)"#), "\(p)") }

        flv.kill()
        let left = ContinuousClock.now
        do {
            try await server.waitUntil("the HTTP-FLV viewer to be gone", timeout: .seconds(3)) {
                seen = try await Self.viewers(server, "live/dash")
                return seen?["http-flv"] == 0
            }
        } catch {
            throw TestFailure("\(error): the last count was \(seen ?? [:]), the hub says \(try await HTTPGet.fetch(port: server.ports.http, "/api/v1/streams").text)")
        }
        #expect(ContinuousClock.now - left < .seconds(3))
    }

    /// The events: the history first, then a tick a second with the frame and the rows just added.
    @Test func theEventStreamSendsTheHistoryThenATickASecond() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        try await Task.sleep(for: .seconds(2))
        let tcp = try await TCPTestClient.connect(port: server.ports.http)
        try await tcp.send("GET /api/v1/dashboard/events?seconds=5 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        var text = ""
        let deadline = ContinuousClock.now + .seconds(6)
        while ContinuousClock.now < deadline, text.components(separatedBy: "event: tick").count < 3 {
            guard let b = await tcp.receive(timeout: .seconds(3)) else { break }
            text += String(buffer: b)
        }
        await tcp.close()
        #expect(text.contains("content-type: text/event-stream") || text.contains("Content-Type: text/event-stream"))
        let history = try #require(text.range(of: "event: history\ndata: "))
        let tick = try #require(text.range(of: "event: tick\ndata: "))
        #expect(history.lowerBound < tick.lowerBound)
        #expect(text.components(separatedBy: "event: tick").count >= 3, "two ticks within 6 s: \(text.suffix(400))")
        #expect(text.contains(#""columns":{"#))
    }

    /// Every metric the Grafana dashboard in docs/ queries is in /metrics.
    @Test func everyMetricTheGrafanaDashboardQueriesExists() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        try await Task.sleep(for: .milliseconds(1500))  // a sample records the gauges
        let url = Tool.checkout.appendingPathComponent("docs/grafana-dashboard.json")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let panels = try #require(json["panels"] as? [[String: Any]])
        let expressions = panels.flatMap { ($0["targets"] as? [[String: Any]] ?? []).compactMap { $0["expr"] as? String } }
        #expect(expressions.count >= 8)
        let names = Set(expressions.flatMap { expr in
            expr.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "_" || $0 == ":") })
                .map(String.init).filter { $0.hasPrefix("liveswarm_") || $0.hasPrefix("process_") }
        })
        #expect(names.count >= 12, "\(names)")
        let metrics = try await HTTPGet.fetch(port: server.ports.http, "/metrics").text
        let exported = Set(metrics.split(separator: "\n").filter { !$0.hasPrefix("#") }
            .compactMap { $0.split(whereSeparator: { $0 == "{" || $0 == " " }).first.map(String.init) })
        let missing = names.subtracting(exported)
        #expect(missing.isEmpty, "not in /metrics: \(missing.sorted())")
    }
}
