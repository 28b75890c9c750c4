import Foundation
import Server
import Testing
import TestSupport

/// The swarm lab (`/lab/`) in headless Chromium: five test viewers added with one click, one switched to the origin
/// alone and two paused from their rows. Judged by the origin's own count of what each viewer took (the `hls`
/// per-viewer list of /api/v1/streams/APP/STREAM, by the `?viewer=` id every request of a viewer carries): the
/// viewer with P2P off takes all its media from the origin; a paused viewer fetches nothing, playlists included;
/// after a short pause a viewer catches up to its target delay, and after one longer than the window it starts again
/// at live instead of fetching parts that are gone. Viewers with P2P on take the next part from the origin's
/// announcements, not from playlist reloads.
@Suite(.serialized, .timeLimit(.minutes(6))) struct BrowserLabTests {
    static let target = 3.0

    struct Row: Decodable {
        struct Resume: Decodable { var pausedMs: Double; var from: String; var to: String; var jumped: Bool }
        var n: Int
        var id: String?
        var state: String
        var p2p: Bool?
        var delay: Double?
        var stalls: Int
        var reportedOrigin: Double
        var peers: Double
        var neighbours: Int
        var originMedia: Int?
        var playlists: Int?
        var playlistLoads: Int
        var announcedParts: Int
        var lastResume: Resume?
    }

    struct Detail: Decodable {
        struct Viewer: Decodable { var id: String; var `protocol`: String; var mediaBytes: Int; var playlistBytes: Int; var playlists: Int }
        var hls: [Viewer]
    }

    struct Chunks: Decodable {
        struct Chunk: Decodable { var id: String; var bytes: Int }
        var chunks: [Chunk]
    }

    /// The origin's count per viewer id (LL-HLS).
    static func origin(_ server: TestServer) async throws -> [String: Detail.Viewer] {
        let d = try JSONDecoder().decode(Detail.self, from: try await HTTPGet.fetch(port: server.ports.http, "/api/v1/streams/live/lab").body)
        return Dictionary(d.hls.filter { $0.protocol == "ll-hls" }.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
    }

    static func chunks(_ server: TestServer) async throws -> [String: Int] {
        let c = try JSONDecoder().decode(Chunks.self, from: try await HTTPGet.fetch(port: server.ports.http, "/api/v1/streams/live/lab/chunks").body)
        return Dictionary(c.chunks.map { ($0.id, $0.bytes) }, uniquingKeysWith: max)
    }

    @Test func fiveViewersOneWithP2POffTwoPausedJudgedByTheOriginsOwnCount() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        // The experiment's low-rate rendition: 320x180 at 300 kbit/s.
        let publisher = try Tool.publisher(url: "\(server.rtmpURL)/live/lab", seconds: 300, size: "320x180", extra: ["-b:v", "300k"])
        defer { publisher.kill() }
        try await server.waitForStream(.init(app: "live", stream: "lab")!)
        // A viewer of a stream younger than its target delay starts at the stream's first part, and stays that close.
        try await server.waitUntil("6 s of parts", timeout: .seconds(20)) { (try? await Self.chunks(server))?.count ?? 0 >= 12 }

        let pages = try await Conversation(script: "pages.py", ["--seconds", "300", "--flag=--window-size=1280,1000"])
        defer { Task { await pages.quit() } }
        let lab = try #require(try await pages.ask(["cmd": "open", "url": "\(server.httpURL)/lab/?stream=live/lab&target=\(Self.target)"])["page"] as? Int)
        try await pages.ask(["cmd": "click", "page": lab, "css": #"button[data-add="5"]"#])
        func rows() async throws -> [Row] {
            try JSONDecoder().decode([Row].self, from: JSONSerialization.data(withJSONObject: try #require(try await pages.eval(lab, "return window.lab.rows()"))))
        }
        func row(_ n: Int) async throws -> Row { try #require(try await rows().first { $0.n == n }) }
        func click(_ n: Int, _ action: String) async throws {
            try await pages.ask(["cmd": "click", "page": lab, "css": #"button[data-n="\#(n)"][data-action="\#(action)"]"#])
        }

        var seen: [Row] = []
        do {
            try await server.waitUntil("five viewers playing near the target, sharing, on announcements", timeout: .seconds(60)) {
                seen = try await rows()
                return seen.count == 5 && seen.allSatisfy { r in
                    r.state == "playing" && r.delay.map { abs($0 - Self.target) < 0.5 } == true && r.peers > 0 && r.announcedParts > 4
                        && r.originMedia != nil
                }
            }
        } catch {
            throw TestFailure("\(error): \(seen)")
        }
        let ids = Dictionary(uniqueKeysWithValues: try seen.map { ($0.n, try #require($0.id)) })

        // Viewer 1 to the origin alone; viewers 2 (for 12 s) and 3 (for longer than the window) paused: from their rows.
        try await click(1, "p2p-off")
        try await click(2, "pause")
        try await click(3, "pause")
        let switched = ContinuousClock.now
        try await Task.sleep(for: .seconds(2))  // a request in flight at the click ends
        let (origin1, chunks1, before) = (try await Self.origin(server), try await Self.chunks(server), try await rows())
        try await Task.sleep(until: switched + .seconds(14), clock: .continuous)
        let (origin2, chunks2, after) = (try await Self.origin(server), try await Self.chunks(server), try await rows())
        let made = chunks2.filter { chunks1[$0.key] == nil }.values.reduce(0, +)
        func grew(_ n: Int, _ key: KeyPath<Detail.Viewer, Int>) -> Int { (origin2[ids[n]!]?[keyPath: key] ?? -1) - (origin1[ids[n]!]?[keyPath: key] ?? 0) }
        print("over 12 s the stream made \(made) B; the origin's count grew by \((1...5).map { grew($0, \.mediaBytes) }) B of media and "
              + "\((1...5).map { grew($0, \.playlists) }) playlists; peer bytes \(before.map(\.peers)) then \(after.map(\.peers))")
        #expect(made > 200_000)

        // P2P off: every part from the origin, none from peers.
        let solo = try #require(after.first { $0.n == 1 })
        #expect(solo.state == "solo" && solo.p2p == false && solo.neighbours == 0)
        #expect(solo.peers == before.first { $0.n == 1 }?.peers, "viewer 1 took nothing from peers with P2P off")
        #expect(Double(grew(1, \.mediaBytes)) >= 0.9 * Double(made), "viewer 1 took \(grew(1, \.mediaBytes)) B from the origin; the stream made \(made) B")
        // Paused: nothing at all from the origin, playlists included.
        for n in [2, 3] {
            #expect(try await row(n).state == "paused")
            #expect(grew(n, \.mediaBytes) == 0 && grew(n, \.playlists) == 0 && grew(n, \.playlistBytes) == 0,
                    "paused viewer \(n) fetched \(grew(n, \.mediaBytes)) B of media and \(grew(n, \.playlists)) playlists")
        }
        // Still sharing, on announcements: a playlist or two in 12 s (the fallback), not one per part (24).
        for n in [4, 5] {
            let (b, a) = (before.first { $0.n == n }!, after.first { $0.n == n }!)
            #expect(a.peers > b.peers && a.announcedParts - b.announcedParts >= 15, "viewer \(n): \(b) then \(a)")
            #expect(grew(n, \.playlists) <= 3, "viewer \(n) loaded \(grew(n, \.playlists)) playlists in 12 s")
        }

        // Viewer 2 resumes after 14 s: it goes on at the target delay.
        try await click(2, "resume")
        var resumed: Row?
        try await server.waitUntil("viewer 2 back at its target delay", timeout: .seconds(15)) {
            resumed = try await row(2)
            return resumed?.state == "playing" && resumed?.delay.map { abs($0 - Self.target) < 0.3 } == true
        }
        print("viewer 2 after its pause: \(String(describing: resumed?.lastResume)), delay \(resumed?.delay ?? -1) s")

        // Viewer 3 resumes after longer than the window and the parts kept beyond it: where it was is gone, and it
        // starts again at live instead of asking for it.
        try await Task.sleep(until: switched + .seconds(42), clock: .continuous)
        let gone = try await Self.chunks(server)
        try await click(3, "resume")
        var back: Row?
        try await server.waitUntil("viewer 3 back at its target delay", timeout: .seconds(15)) {
            back = try await row(3)
            return back?.state == "playing" && back?.delay.map { abs($0 - Self.target) < 0.3 } == true
        }
        let jump = try #require(back?.lastResume)
        print("viewer 3 after its pause: \(jump), delay \(back?.delay ?? -1) s")
        #expect(jump.jumped && jump.pausedMs > 39_000)
        #expect(gone[jump.from] == nil, "part \(jump.from), where viewer 3 paused, is gone from the origin")
        let errors = try await pages.eval(lab, "return window.lab.state.viewers.map((v) => v.frame.contentWindow.livePlayer.errors)") as? [[String]] ?? []
        #expect(!errors.flatMap { $0 }.contains { $0.contains("HTTP 404") || $0.contains("HTTP 410") }, "\(errors)")

        // All at once: P2P off for every viewer, then remove them all.
        try await pages.ask(["cmd": "click", "page": lab, "css": #"button[data-all="p2p-off"]"#])
        try await server.waitUntil("every viewer with P2P off", timeout: .seconds(10)) { try await rows().allSatisfy { $0.p2p == false } }
        try await pages.ask(["cmd": "click", "page": lab, "css": #"button[data-all="remove"]"#])
        #expect(try await rows().isEmpty)
        let pageErrors = try await pages.ask(["cmd": "errors", "page": lab])["errors"] as? [Any] ?? []
        #expect(pageErrors.isEmpty, "\(pageErrors)")
        let ticks = try await pages.eval(lab, "return window.lab.ticks") as? Int ?? 0
        let charted = try await pages.eval(lab, "return window.lab.charts.traffic ? window.lab.charts.traffic.data.datasets[3].data.length : -1") as? Int ?? -1
        #expect(ticks > 40 && charted > 40, "\(ticks) samples, \(charted) points charted")
    }
}
