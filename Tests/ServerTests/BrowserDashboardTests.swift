import Foundation
import STUN
import Server
import Testing
import TestSupport

/// The operator dashboard (`/dashboard/`) in headless Chromium, over a server with one RTMP stream watched by one
/// viewer of every kind (ffmpeg over RTMP, HTTP-FLV and LL-HLS; aiortc over WHEP; two /p2p/ pages in Chromium), a
/// room of two aiortc participants with colours and tones of their own, and one TURN allocation. The page's counts
/// must equal what the test started and the API; its chart's data must follow a viewer that comes and goes; its P2P
/// switch must send both P2P viewers to the origin, by the origin's own count of what each took, and back.
@Suite(.serialized, .timeLimit(.minutes(8))) struct BrowserDashboardTests {
    static let token = "dashboard-test"
    static let expected = ["rtmp": 1, "http-flv": 1, "hls": 0, "ll-hls": 1, "whep": 1, "p2p": 2]

    struct Frame: Decodable {
        struct Stream: Decodable {
            struct P2P: Decodable { var enabled: Bool; var share: Double? }
            var stream: String
            var viewers: [String: Int]
            var p2p: P2P
        }
        struct Room: Decodable {
            struct Participant: Decodable { var name: String }
            var name: String
            var participants: [Participant]
        }
        struct TURN: Decodable { var allocations: Int }
        var streams: [Stream]
        var rooms: [Room]
        var turn: TURN?
    }

    struct History: Decodable { var frame: Frame? }

    static func frame(_ server: TestServer) async throws -> Frame? {
        try JSONDecoder().decode(History.self, from: try await HTTPGet.fetch(port: server.ports.http, "/api/v1/dashboard?seconds=1").body).frame
    }

    /// What the page shows, read from its tables.
    static let pageCounts = """
        const streams = {};
        for (const td of document.querySelectorAll('td[data-protocol]')) (streams[td.dataset.stream] ||= {})[td.dataset.protocol] = Number(td.textContent);
        const rooms = {};
        for (const td of document.querySelectorAll('td[data-participants]')) rooms[td.dataset.participants] = parseInt(td.textContent, 10);
        const turn = document.querySelector('td[data-turn="allocations"]');
        return { streams, rooms, allocations: turn ? Number(turn.textContent) : null, ticks: window.dashboard.ticks,
                 noChart: !document.getElementById('nochart').hidden, p2p: (document.querySelector('[data-p2p="live/cam"]') || {}).textContent };
        """

    /// The last point of each dataset of the viewers chart (the Chart object's data, not its pixels).
    static let chartNow = """
        const ds = window.dashboard.charts.viewers.data.datasets;
        const out = {};
        for (const d of ds) out[d.label] = d.data.length ? d.data[d.data.length - 1].y : null;
        return out;
        """

    struct PageCounts: Decodable {
        var streams: [String: [String: Int]]
        var rooms: [String: Int]
        var allocations: Int?
        var ticks: Int
        var noChart: Bool
        var p2p: String?
    }

    static func decode<T: Decodable>(_ value: Any?, as: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: JSONSerialization.data(withJSONObject: try #require(value), options: .fragmentsAllowed))
    }

    struct Detail: Decodable {
        struct Viewer: Decodable { var id: String; var `protocol`: String; var mediaBytes: Int }
        var hls: [Viewer]
    }

    struct Chunks: Decodable {
        struct Chunk: Decodable { var id: String; var bytes: Int }
        var chunks: [Chunk]
    }

    @Test func theDashboardCountsEveryViewerDrawsThemLiveAndSwitchesP2POffAndOn() async throws {
        try await NetworkNamespace.with { ns in
            let server = try await TestServer.start(reachableFrom: ns) { c in
                c.apiToken = Self.token
                c.stun.turn.users = ["turn-test": "pass-word"]
            }
            defer { Task { await server.stop() } }
            let cpu = CPUSampler()
            let publisher = try Tool.publisher(url: "\(server.rtmpURL)/live/cam", seconds: 300, size: "320x240")
            defer { publisher.kill() }
            try await server.waitForStream(.init(app: "live", stream: "cam")!)
            // ffmpeg is no LL-HLS client: given a playlist of parts alone (the stream's first second) it finds an empty
            // segment and quits. It starts once a whole segment is listed.
            try await server.waitUntil("a whole segment in the LL-HLS playlist", timeout: .seconds(15)) {
                (try? await HTTPGet.fetch(port: server.ports.http, "/live/cam/index.m3u8"))?.text.contains("#EXTINF") == true
            }
            func ffmpeg(_ url: String) throws -> Tool {
                try Tool("ffmpeg", ["-hide_banner", "-loglevel", "error", "-i", url, "-t", "280", "-f", "null", "-"])
            }
            let rtmp = try ffmpeg("\(server.rtmpURL)/live/cam")
            let flv = try ffmpeg("\(server.httpURL)/live/cam.flv")
            let llhls = try ffmpeg("\(server.httpURL)/live/cam/index.m3u8")
            defer { for t in [rtmp, flv, llhls] { t.kill() } }
            // aiortc offers no loopback candidates: the WHEP viewer and the room are in the namespace. The
            // participants leave out the room's TURN servers, so that the one allocation is the test's own.
            let base = "\(ns.hostAddress):\(server.ports.http)"
            let whep = try ns.python([Tool.checkout.appendingPathComponent("Tests/Browser/aiortc_peer.py").path,
                                      "play", "http://\(base)/whep/live/cam", "--seconds", "200"])
            func participant(_ name: String, _ ycbcr: [Int], tone: Int) throws -> Tool {
                try ns.python([Tool.checkout.appendingPathComponent("Tests/Browser/room_client.py").path,
                               "--url", "ws://\(base)/ws", "--room", "ops", "--name", name, "--seconds", "200", "--stun-only",
                               "--luma", "\(ycbcr[0])", "--cb", "\(ycbcr[1])", "--cr", "\(ycbcr[2])", "--tone", "\(tone)"])
            }
            let ana = try participant("ana", [81, 90, 240], tone: 500)
            let ben = try participant("ben", [145, 54, 34], tone: 700)
            defer { for t in [whep, ana, ben] { t.kill(SIGKILL) } }
            let turn = try TURNSecurityTests.Client(port: server.ports.stunUDP)
            let allocated = try turn.request(.allocate, [(.requestedTransport, [17, 0, 0, 0])])
            #expect(allocated.type.messageClass == .successResponse, "\(String(describing: try? allocated.errorCode()))")

            let pages = try await Conversation(script: "pages.py", ["--seconds", "400", "--flag=--window-size=1280,1000"])
            defer { Task { await pages.quit() } }
            let viewerURL = "\(server.httpURL)/p2p/?stream=live/cam&target=3"
            let p2pA = try #require(try await pages.ask(["cmd": "open", "url": viewerURL])["page"] as? Int)
            let p2pB = try #require(try await pages.ask(["cmd": "open", "url": viewerURL])["page"] as? Int)
            let dash = try #require(try await pages.ask(["cmd": "open", "url": "\(server.httpURL)/dashboard/"])["page"] as? Int)

            // The counts: the API first (everything has joined), then the page, equal to it and to what was started.
            var frame: Frame?
            do {
                try await server.waitUntil("every viewer, the room and the allocation", timeout: .seconds(60)) {
                    frame = try await Self.frame(server)
                    return frame?.streams.first { $0.stream == "live/cam" }?.viewers == Self.expected
                        && frame?.rooms.first { $0.name == "ops" }?.participants.count == 2 && frame?.turn?.allocations == 1
                }
            } catch {
                throw TestFailure("\(error): the dashboard's last frame: \(String(describing: frame))")
            }
            try await Task.sleep(for: .seconds(2))  // a tick or two reach the page
            let shown = try Self.decode(try await pages.eval(dash, Self.pageCounts), as: PageCounts.self)
            let api = try #require(try await Self.frame(server))
            print("the page shows \(shown.streams), rooms \(shown.rooms), \(shown.allocations ?? -1) TURN allocations")
            #expect(shown.ticks >= 1 && !shown.noChart)
            #expect(shown.streams["live/cam"] == Self.expected)
            #expect(shown.streams["live/cam"] == api.streams.first { $0.stream == "live/cam" }?.viewers)
            #expect(shown.rooms == ["ops": 2] && api.rooms.map { [$0.name: $0.participants.count] } == [["ops": 2]])
            #expect(shown.allocations == 1 && api.turn?.allocations == 1)
            #expect(shown.p2p == "on")

            // The chart: an HTTP-FLV viewer comes and goes; the chart's data follows within 3 s each way.
            func chartFLV() async throws -> Double? {
                (try await pages.eval(dash, Self.chartNow) as? [String: Any])?["http-flv"] as? Double
            }
            let before = try #require(try await chartFLV())
            var joined = Duration.zero, left = Duration.zero
            let extra = try ffmpeg("\(server.httpURL)/live/cam.flv")
            var t0 = ContinuousClock.now
            try await server.waitUntil("the chart to rise", timeout: .seconds(10)) { try await chartFLV() == before + 1 }
            joined = ContinuousClock.now - t0
            extra.kill()
            t0 = ContinuousClock.now
            try await server.waitUntil("the chart to fall", timeout: .seconds(10)) { try await chartFLV() == before }
            left = ContinuousClock.now - t0
            print("the chart rose \(joined) after the viewer started and fell \(left) after it was killed")
            #expect(joined < .seconds(3) && left < .seconds(3))

            // P2P: the two pages share first.
            struct P2PStats: Decodable {
                struct Engine: Decodable { var peerBytes: Double; var p2pOff: Bool }
                var viewer: String
                var engine: Engine?
            }
            func stats(_ page: Int) async throws -> P2PStats { try Self.decode(try await pages.eval(page, "return window.p2pStats()"), as: P2PStats.self) }
            try await server.waitUntil("both P2P viewers to take chunks from each other", timeout: .seconds(60)) {
                let (a, b) = (try await stats(p2pA), try await stats(p2pB))
                return (a.engine?.peerBytes ?? 0) > 0 && (b.engine?.peerBytes ?? 0) > 0
            }
            let ids = [try await stats(p2pA).viewer, try await stats(p2pB).viewer]

            // Off, from the page (token typed, button clicked).
            try await pages.ask(["cmd": "type", "page": dash, "css": "#token", "text": Self.token])
            try await pages.eval(dash, "document.getElementById('token').dispatchEvent(new Event('change'))")
            try await pages.ask(["cmd": "click", "page": dash, "css": #"button[data-switch="live/cam"]"#])
            let off = ContinuousClock.now
            // From 5 s after the switch, 10 s of the origin's own count: each P2P viewer took from it about what the
            // stream made, and nothing more came from peers.
            func originBytes() async throws -> [String: Int] {
                let d = try JSONDecoder().decode(Detail.self, from: try await HTTPGet.fetch(port: server.ports.http, "/api/v1/streams/live/cam",
                                                                                 headers: ["Authorization": "Bearer \(Self.token)"]).body)
                return Dictionary(d.hls.filter { ids.contains($0.id) && $0.protocol == "ll-hls" }.map { ($0.id, $0.mediaBytes) }, uniquingKeysWith: max)
            }
            func chunks() async throws -> [String: Int] {
                let c = try JSONDecoder().decode(Chunks.self, from: try await HTTPGet.fetch(port: server.ports.http, "/api/v1/streams/live/cam/chunks").body)
                return Dictionary(c.chunks.map { ($0.id, $0.bytes) }, uniquingKeysWith: max)
            }
            try await Task.sleep(until: off + .seconds(5), clock: .continuous)
            let (origin1, chunks1) = (try await originBytes(), try await chunks())
            let peers1 = [try await stats(p2pA), try await stats(p2pB)].map { $0.engine?.peerBytes ?? -1 }
            try await Task.sleep(until: off + .seconds(15), clock: .continuous)
            let (origin2, chunks2) = (try await originBytes(), try await chunks())
            let after = [try await stats(p2pA), try await stats(p2pB)]
            let made = chunks2.filter { chunks1[$0.key] == nil }.values.reduce(0, +)
            let shownOff = try Self.decode(try await pages.eval(dash, Self.pageCounts), as: PageCounts.self)
            print("P2P off: the stream made \(made) B in 10 s; the origin served the P2P viewers \(ids.map { (origin2[$0] ?? 0) - (origin1[$0] ?? 0) }) B; "
                  + "peer bytes \(peers1) then \(after.map { $0.engine?.peerBytes ?? -1 })")
            #expect(made > 50_000)
            #expect(after.allSatisfy { $0.engine?.p2pOff == true })
            #expect(after.map { $0.engine?.peerBytes ?? -1 } == peers1, "nothing from peers once P2P is off")
            for id in ids {
                let took = (origin2[id] ?? 0) - (origin1[id] ?? 0)
                #expect(Double(took) >= 0.75 * Double(made), "viewer \(id) took \(took) B from the origin while the stream made \(made) B")
            }
            #expect(shownOff.p2p == "off")
            #expect(try await Self.frame(server)?.streams.first { $0.stream == "live/cam" }?.p2p.enabled == false)

            // On again, from the page: the peers find each other and the share rises.
            try await pages.ask(["cmd": "click", "page": dash, "css": #"button[data-switch="live/cam"]"#])
            let peersOff = after.map { $0.engine?.peerBytes ?? 0 }.reduce(0, +)
            var share: Double?
            try await server.waitUntil("peers to share again", timeout: .seconds(45)) {
                let now = [try await stats(p2pA), try await stats(p2pB)]
                share = try await Self.frame(server)?.streams.first { $0.stream == "live/cam" }?.p2p.share
                return now.allSatisfy { $0.engine?.p2pOff == false } && now.map { $0.engine?.peerBytes ?? 0 }.reduce(0, +) > peersOff + 50_000
                    && (share ?? 0) > 0
            }
            print("P2P on again: share over the last 10 s \(share ?? 0)")

            // Without Chart.js the page says so, and the tables still count.
            let bare = try #require(try await pages.ask(["cmd": "open", "url": "\(server.httpURL)/dashboard/",
                                                          "block": ["*/javascript/chart.js/*"]])["page"] as? Int)
            try await Task.sleep(for: .seconds(2))
            let plain = try Self.decode(try await pages.eval(bare, Self.pageCounts), as: PageCounts.self)
            let notice = try await pages.eval(bare, "return document.getElementById('nochart').textContent") as? String ?? ""
            #expect(plain.noChart && notice.contains("libjs-chart.js"), "\(notice)")
            #expect(plain.streams["live/cam"]?["rtmp"] == 1)
            for page in [p2pA, p2pB, dash, bare] {
                let errors = try await pages.ask(["cmd": "errors", "page": page])["errors"] as? [Any] ?? []
                #expect(errors.isEmpty, "page \(page) threw: \(errors)")
            }
            print("CPUs \(Int(cpu.busyFraction() * 100)) % busy over the run")
            withExtendedLifetime(turn) {}
        }
    }
}
