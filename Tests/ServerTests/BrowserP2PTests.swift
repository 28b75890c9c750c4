import Foundation
import ICE
import Server
import Signaling
import Testing
import TestSupport

/// Ten viewers of one stream, each a page of its own in headless Chromium (`web-demo/p2p`), sharing chunks over
/// DataChannels (`web-demo/shared/p2p-engine.js`) through the tracker. The P2P share is judged from the origin's
/// own count of the bytes it served, against what the pages provably appended to Media Source Extensions (every
/// appended buffer is hashed by a script the driver installs, and must be something the origin published).
@Suite(.serialized, .timeLimit(.minutes(12))) struct BrowserP2PTests {
    static let viewers = 10
    static let seconds = 60
    static let target = 3.0

    struct Run: Decodable {
        struct Page: Decodable {
            struct Stats: Decodable {
                struct Player: Decodable {
                    var delay: Double?
                    var firstFrameMs: Double?
                    var stalls: Int
                    var stalledMs: Double
                    var errors: [String]
                }
                struct Engine: Decodable {
                    var peerId: String?
                    var droppedPeers: [[String]]
                    var neighbours: Int
                    var originBytes: Double
                    var peerBytes: Double
                    var uploadedBytes: Double
                    var wireBytesIn: Double
                    var wireBytesOut: Double
                    var httpChunks: Int
                    var peerChunks: Int
                    var urgent: Int
                    var badChunks: Int
                }
                var originBytes: Double
                var peerBytes: Double
                var player: Player
                var engine: Engine?
                var framesPresented: Double?
                var playingSeconds: Double?
            }
            struct Channel: Decodable {
                var peer: String
                var bytesIn: Double
                var bytesOut: Double
                var getStatsIn: Double?
                var getStatsOut: Double?
                var buffered: Double
                var chunkBytesIn: Double
            }
            struct Appended: Decodable {
                var count: Int
                var bytes: Double
                var unmatchedCount: Int
            }
            var index: Int
            var stats: Stats
            var check: [Channel]?
            var appended: Appended
        }
        struct Scripted: Decodable {
            var page: Int
            var at: Double
            var result: Page.Stats
        }
        var pages: [Page]
        var scripts: [Scripted]
    }

    struct Summary: Decodable {
        struct Bytes: Decodable { var media: Int; var playlists: Int }
        struct Stream: Decodable { var stream: String; var originBytes: Bytes; var viewers: Int; var p2pShare: Double? }
        var streams: [Stream]
    }

    static func served(_ server: TestServer, _ stream: String) async throws -> Summary.Bytes {
        let s = try JSONDecoder().decode(Summary.self, from: try await HTTPGet.fetch(port: server.ports.http, "/api/v1/p2p").body)
        return s.streams.first { $0.stream == "live/\(stream)" }?.originBytes ?? .init(media: 0, playlists: 0)
    }

    /// What a run measured, with the origin's byte counts over it.
    struct Outcome {
        var run: Run
        var originMedia: Double
        var originPlaylists: Double
        var busy: Double
        var viewers: Int
        var seconds: Int
        /// What the chunk list gave the pages for their RTCPeerConnections.
        var iceServers: [ICEServer] = []
        /// Bytes the server's TURN relays carried in all.
        var turnRelayedBytes = 0
        /// Bytes the pages appended: the demand the origin would have served alone.
        var demand: Double { run.pages.reduce(0) { $0 + $1.appended.bytes } }
        var share: Double { 1 - originMedia / demand }
        var delays: [Double] { run.pages.compactMap(\.stats.player.delay).sorted() }
        var stalledMs: Double { run.pages.reduce(0) { $0 + $1.stats.player.stalledMs } }
        /// Frames presented a second, averaged over the pages (the stream has 30).
        var presentedFPS: Double {
            let rates = run.pages.compactMap { p -> Double? in
                guard let f = p.stats.framesPresented, let s = p.stats.playingSeconds, s > 0 else { return nil }
                return f / s
            }
            return rates.isEmpty ? 0 : rates.reduce(0, +) / Double(rates.count)
        }
        var starved: Bool { CPUSampler.starved(busy: busy, presentedFPS: presentedFPS) }
    }

    static func run(p2p: Bool, stream: String, viewers: Int = viewers, seconds: Int = seconds, query: String = "", scripts: [String] = [],
                    beside: (@Sendable (TestServer) throws -> Tool)? = nil, publisher publish: ((TestServer) throws -> Tool)? = nil,
                    configure: (inout ServerConfiguration) -> Void = { _ in }) async throws -> (Outcome, Tool?) {
        let server = try await TestServer.start(configure)
        defer { Task { await server.stop() } }
        let publisher = try publish?(server)
            ?? Tool.publisher(url: "\(server.rtmpURL)/live/\(stream)", seconds: Double(seconds + 60), size: "426x240", extra: ["-b:v", "800k"])
        defer { publisher.kill(SIGTERM) }
        try await server.waitUntil("a few CMAF parts", timeout: .seconds(30)) {
            (try? await HTTPGet.fetch(port: server.ports.http, "/live/\(stream)/index.m3u8"))?.text.components(separatedBy: "#EXTINF").count ?? 0 >= 3
        }
        let before = try await served(server, stream)
        // The ICE servers the chunk list hands the P2P viewers.
        struct Chunks: Decodable {
            struct Swarm: Decodable { var iceServers: [ICEServer] }
            var swarm: Swarm?
        }
        let chunks = try await HTTPGet.fetch(port: server.ports.http, "/api/v1/streams/live/\(stream)/chunks").body
        let iceServers = try JSONDecoder().decode(Chunks.self, from: chunks).swarm?.iceServers ?? []
        // Runs beside the pages; the caller waits for it (it ends by itself).
        let other = try beside?(server)
        let cpu = CPUSampler()
        let args = [Tool.checkout.appendingPathComponent("Tests/Browser/swarm.py").path,
                    "--url", "\(server.httpURL)/p2p/?stream=live/\(stream)&p2p=\(p2p ? 1 : 0)&target=\(target)\(query)",
                    "--pages", String(viewers), "--seconds", String(seconds),
                    "--stats-js", "return window.p2pStats()", "--check-js", "return window.p2pCheck()",
                    "--hash-appends", "--chunks-url", "\(server.httpURL)/api/v1/streams/live/\(stream)/chunks",
                    "--sample-every", "10",
                    // DataChannel-only pages gather mDNS names instead of addresses otherwise (INTEROP.md).
                    "--flag=--disable-features=WebRtcHideLocalIpsWithMdns"] + scripts.flatMap { ["--script-at", $0] }
        let run = try await Tool.python(args).jsonResult(Run.self, timeout: .seconds(Int64(seconds + viewers * 5 + 120)))
        let busy = cpu.busyFraction()
        let after = try await served(server, stream)
        return (Outcome(run: run, originMedia: Double(after.media - before.media), originPlaylists: Double(after.playlists - before.playlists),
                        busy: busy, viewers: viewers, seconds: seconds, iceServers: iceServers,
                        turnRelayedBytes: server.swarm.turnAllocations?.snapshot.relayedBytes ?? 0), other)
    }

    static func notJudged(_ o: Outcome) -> String {
        "starved: CPUs \(Int(o.busy * 100)) % busy and \(o.presentedFPS) frames presented a second: not judged"
    }

    static func describe(_ o: Outcome, _ title: String) -> String {
        let mb = { (b: Double) in String(format: "%.1f MB", b / 1e6) }
        let d = o.delays
        let median = d.isEmpty ? .nan : d[d.count / 2]
        let playTime = Double(o.viewers * o.seconds) * 1000
        var lines = [
            "\(title): \(o.viewers) viewers, \(o.seconds) s, CPUs \(Int(o.busy * 100)) % busy, "
                + String(format: "%.1f frames presented a second per page", o.presentedFPS) + (o.starved ? " (starved)" : ""),
            "  appended by the pages \(mb(o.demand)); the origin served \(mb(o.originMedia)) of media and \(mb(o.originPlaylists)) of playlists",
            String(format: "  P2P share of media (origin's count) %.1f %%; with playlists %.1f %%; ceiling (N-1)/N %.1f %%",
                   o.share * 100, (1 - (o.originMedia + o.originPlaylists) / (o.demand + o.originPlaylists)) * 100,
                   Double(o.viewers - 1) / Double(o.viewers) * 100),
            String(format: "  delay median %.2f s (min %.2f, max %.2f); stalled %.0f ms in all, %.2f %% of play time; stalls %d",
                   median, d.first ?? .nan, d.last ?? .nan, o.stalledMs, o.stalledMs / playTime * 100,
                   o.run.pages.reduce(0) { $0 + $1.stats.player.stalls }),
        ]
        for p in o.run.pages {
            let s = p.stats
            lines.append(String(format: "  page %d: delay %.2f s, first frame %.0f ms, stalls %d (%.0f ms), origin %@, peers %@",
                                p.index, s.player.delay ?? .nan, s.player.firstFrameMs ?? .nan, s.player.stalls, s.player.stalledMs,
                                mb(s.originBytes), mb(s.peerBytes))
                         + (s.engine.map { e in
                             String(format: ", sent %@, %d neighbours, chunks %d from peers %d from origin (%d urgent)",
                                    mb(e.uploadedBytes), e.neighbours, e.peerChunks, e.httpChunks, e.urgent)
                         } ?? ""))
        }
        return lines.joined(separator: "\n")
    }

    /// The checks that hold on any machine: nothing forged or unknown appended, and each viewer's DataChannel byte
    /// counts equal what Chromium's getStats() counted on the same channels.
    static func checkIntegrity(_ o: Outcome, badChunksExpected: Bool = false) {
        for p in o.run.pages {
            #expect(p.appended.count > 20, "page \(p.index) appended \(p.appended.count) buffers")
            #expect(p.appended.unmatchedCount == 0, "page \(p.index) appended \(p.appended.unmatchedCount) buffers the origin never published")
            #expect(p.stats.player.errors.isEmpty, "page \(p.index): \(p.stats.player.errors)")
            // The page stops trading before it reads getStats, but its neighbours go on announcing chunks to it: a
            // control message or two (well under 2 KB) may be counted by one side and not yet by the other.
            for c in p.check ?? [] {
                let inbound = (c.getStatsIn ?? -1e9) - c.bytesIn, outbound = c.bytesOut - (c.getStatsOut ?? -1e9) - c.buffered
                #expect(abs(inbound) <= 2048 && abs(outbound) <= 2048,
                        "page \(p.index), peer \(c.peer): engine \(c.bytesIn) in, \(c.bytesOut) out (\(c.buffered) buffered); getStats \(String(describing: c.getStatsIn)) in, \(String(describing: c.getStatsOut)) out")
            }
            let differences = (p.check ?? []).map { max(abs(($0.getStatsIn ?? 0) - $0.bytesIn), abs($0.bytesOut - $0.buffered - ($0.getStatsOut ?? 0))) }
            print(String(format: "page %d: DataChannel bytes, engine against getStats, on %d channels: largest difference %.0f B of %.0f B received",
                         p.index, differences.count, differences.max() ?? 0, (p.check ?? []).reduce(0) { $0 + $1.bytesIn }))
            if let e = p.stats.engine {
                // Reported peer bytes are verified chunk bytes: all of them came over DataChannels.
                #expect(p.stats.peerBytes == e.peerBytes && e.peerBytes <= e.wireBytesIn,
                        "page \(p.index): \(e.peerBytes) peer bytes reported, \(e.wireBytesIn) received on DataChannels")
                if !badChunksExpected { #expect(e.badChunks == 0) }
            }
        }
    }

    @Test func tenViewersShareChunksNearTheLiveEdge() async throws {
        // Page 3 is paused at 20 s for 15 s; its figures are read at the pause, the resume and 10 s later.
        let stats = "return window.p2pStats()"
        // The house rule: a starved run (CPUs 70 % busy and under 25 frames a second presented) is repeated once, and
        // a starved repeat is reported, its timing not judged.
        let o = try await CPUSampler.againIfStarved({ attempt in
            try await Self.run(p2p: true, stream: "swarm\(attempt)", scripts: [
                "3:20:document.querySelector('video').pause(); \(stats)",
                "3:35:document.querySelector('video').play(); \(stats)",
                "3:45:\(stats)",
            ]).0
        }, isStarved: \.starved) { print(Self.describe($0, "P2P on (starved: run again)")) }
        print(Self.describe(o, "P2P on"))
        Self.checkIntegrity(o)
        for p in o.run.pages {
            #expect((p.stats.engine?.neighbours ?? 0) >= 2, "page \(p.index) has \(p.stats.engine?.neighbours ?? 0) neighbours")
            #expect(p.stats.peerBytes > 0, "page \(p.index) got nothing from peers")
        }
        let median = o.delays.isEmpty ? .infinity : o.delays[o.delays.count / 2]
        let stalledShare = o.stalledMs / Double(Self.viewers * Self.seconds * 1000)
        let ceiling = Double(Self.viewers - 1) / Double(Self.viewers)
        print(String(format: "P2P goal: share >= 90 %% of the ceiling (%.1f %%) at under 4 s median delay with under 0.5 %% stalled: "
                     + "share %.1f %% (%.0f %% of the ceiling), median delay %.2f s, stalled %.2f %%",
                     ceiling * 90, o.share * 100, o.share / ceiling * 100, median, stalledShare * 100))
        // Floors that catch a broken engine on a loaded machine; the goal is printed above.
        CPUSampler.judgeTiming(starved: o.starved, Self.notJudged(o)) {
            #expect(o.share > 0.6, "P2P share of media \(o.share)")
            #expect(median < 4, "median delay \(median) s")
            #expect(stalledShare < 0.03, "stalled \(stalledShare * 100) % of play time")
        }

        // The paused viewer: caught up within 10 s of resuming, mostly from peers meanwhile.
        let snaps = o.run.scripts.filter { $0.page == 3 }.sorted { $0.at < $1.at }
        try #require(snaps.count == 3)
        let (resumed, later) = (snaps[1].result, snaps[2].result)
        let fromPeers = later.peerBytes - resumed.peerBytes
        let fromOrigin = later.originBytes - resumed.originBytes
        print(String(format: "paused viewer: delay %.2f s at the resume, %.2f s 10 s later; in those 10 s %.0f kB from peers, %.0f kB from the origin",
                     resumed.player.delay ?? .nan, later.player.delay ?? .nan, fromPeers / 1000, fromOrigin / 1000))
        #expect((resumed.player.delay ?? 0) > Self.target + 10, "the pause put it behind")
        #expect((later.player.delay ?? .infinity) < Self.target + 1, "back near the target delay within 10 s")
        #expect(fromPeers > fromOrigin, "most of its chunks came from peers")
    }

    /// A browser's WHIP stream (H.264 and Opus made into a hub stream) shared by four P2P viewers.
    @Test func fourViewersShareAWHIPStream() async throws {
        let (o, _) = try await Self.run(p2p: true, stream: "whip", viewers: 4, seconds: 30) { server in
            try Tool.drive(url: "\(server.httpURL)/webrtc/?role=publish&stream=live/whip&size=426x240&tone=550", seconds: 100,
                           statsJS: "return window.webrtcStats()", flags: ["--autoplay-policy=no-user-gesture-required"])
        }
        print(Self.describe(o, "P2P on, a WHIP publisher"))
        Self.checkIntegrity(o)
        for p in o.run.pages { #expect(p.stats.peerBytes > 0, "page \(p.index) got nothing from peers") }
        CPUSampler.judgeTiming(starved: o.starved, Self.notJudged(o)) {
            #expect(o.share > 0.4, "P2P share of media \(o.share)")
        }
    }

    @Test func withP2POffTheOriginSendsEveryByte() async throws {
        // Four viewers for 15 s are enough to show it, and keep the test run short.
        let (o, _) = try await Self.run(p2p: false, stream: "nop2p", viewers: 4, seconds: 15)
        print(Self.describe(o, "P2P off"))
        Self.checkIntegrity(o)
        for p in o.run.pages { #expect(p.stats.peerBytes == 0 && p.stats.engine == nil) }
        // By default P2P viewers get STUN only: TURN would carry the bytes P2P saves.
        #expect(o.iceServers.count == 1 && o.iceServers.allSatisfy { $0.urls.allSatisfy { $0.hasPrefix("stun:") } }, "\(o.iceServers)")
        // Everything appended came from the origin, and the origin counted at least that much.
        #expect(o.originMedia >= o.demand, "origin \(o.originMedia) bytes for \(o.demand) appended")
        #expect(o.share <= 0.001)
    }

    /// With TURN allowed for P2P (`--turn-for-p2p`), two viewer pages relay-only (`relay=1`) exchange chunks: the
    /// chunk list hands them TURN with general credentials, and every peer byte crosses the server's relays.
    @Test func withTURNForP2PTwoViewersShareChunksThroughRelaysOnly() async throws {
        let (o, _) = try await Self.run(p2p: true, stream: "relayed", viewers: 2, seconds: 20, query: "&relay=1",
                                        configure: { $0.stun.turn.forP2P = true })
        print(Self.describe(o, "P2P through TURN relays only"))
        Self.checkIntegrity(o)
        let turn = o.iceServers.first { $0.username != nil }
        #expect(turn?.urls.contains { $0.hasPrefix("turn:") } == true && turn?.username?.hasSuffix(TURNCredentials.sfuScopeSuffix) == false,
                "general TURN credentials for P2P: \(o.iceServers)")
        let fromPeers = o.run.pages.map(\.stats.peerBytes)
        print("from peers \(fromPeers) B; TURN relayed \(o.turnRelayedBytes) B")
        #expect(fromPeers.allSatisfy { $0 > 0 } || o.starved, "each page got chunks from the other: \(fromPeers)")
        #expect(fromPeers.reduce(0, +) > 100_000, "\(fromPeers)")
        // Each peer byte goes out through one relay and in through the other.
        #expect(Double(o.turnRelayedBytes) >= Double(fromPeers.reduce(0, +)), "relayed \(o.turnRelayedBytes) B for \(fromPeers) B from peers")
    }

    /// A peer of the test's own (`Tests/Browser/bad_peer.py`, aiortc, written apart from the engine) claims every
    /// chunk first and sends each with forged bytes. Viewers find out by the hash, take the chunk from the origin,
    /// drop that peer for good and play on; the hashes of what they appended prove nothing forged was played.
    @Test func aPeerThatForgesChunksIsDroppedAndNothingForgedIsPlayed() async throws {
        struct BadPeer: Decodable { var peerId: String; var forged: Int; var forgedTo: [String: Int]; var channelsOpened: Int }
        // The viewers also run with an upload limit of 200 kbit/s (a quarter of the stream's rate), checked below.
        let uploadKbps = 200.0
        // The house rule, as in the 10-viewer test: a starved run is repeated once, and a starved repeat's timing
        // (playing on near the target, every forged chunk arriving whole to be caught) is reported, not judged.
        let (o, bad) = try await CPUSampler.againIfStarved({ attempt in
            let stream = "forged\(attempt)"
            let (run, tool) = try await Self.run(p2p: true, stream: stream, viewers: 4, seconds: 30,
                                                 query: "&uploadKbps=\(Int(uploadKbps))") { server in
                try Tool.python([Tool.checkout.appendingPathComponent("Tests/Browser/bad_peer.py").path,
                                 "--origin", server.httpURL, "--stream", "live/\(stream)", "--seconds", "40"])
            }
            return (run, try await #require(tool).jsonResult(BadPeer.self, timeout: .seconds(60)))
        }, isStarved: { $0.0.starved }) { print(Self.describe($0.0, "P2P on, with a peer that forges chunks (starved: run again)")) }
        print(Self.describe(o, "P2P on, with a peer that forges chunks"))
        Self.checkIntegrity(o, badChunksExpected: true)
        print("the forging peer: \(bad.forged) forged chunks sent over \(bad.channelsOpened) channels, by viewer \(bad.forgedTo)")
        #expect(bad.forged >= 1 && bad.channelsOpened >= 1, "the forging peer was asked for nothing")
        #expect(bad.forgedTo["?"] == nil, "forged chunks sent on a channel whose viewer the forging peer did not know")
        var caught = 0
        var missed: [String] = []
        var late: [String] = []
        for p in o.run.pages {
            let e = try #require(p.stats.engine)
            let drops = e.droppedPeers.filter { $0.first == bad.peerId && ($0.last ?? "").contains("failed its hash check") }
            caught += e.badChunks
            // A page sent any forged chunk catches exactly one: the first, after which it drops the peer. A second
            // one it had asked for before that may still be sent (the requests cross on the wire) and is not taken in.
            let sentTo = bad.forgedTo[e.peerId ?? ""] ?? 0
            #expect(sentTo > 0 || e.badChunks == 0, "page \(p.index) caught \(e.badChunks) forged chunks, none were sent to it")
            if sentTo > 0 && e.badChunks == 0 { missed.append("page \(p.index): \(sentTo) sent, none caught") }
            // Dropped at the first forged chunk, and never taken back.
            #expect(drops.count == min(e.badChunks, 1), "page \(p.index): \(e.badChunks) bad chunks, dropped for it \(drops.count) times")
            #expect(e.badChunks <= 1, "page \(p.index) took \(e.badChunks) forged chunks: it was not dropped for good")
            if (p.stats.player.delay ?? .infinity) >= Self.target + 1.5 { late.append("page \(p.index) at \(p.stats.player.delay ?? .infinity) s") }
            // The upload limit: at most its rate over the page's life (the first frame comes within a second or two
            // of the engine's start; 5 s of margin), plus the bucket's one second.
            let life = (p.stats.playingSeconds ?? 0) + (p.stats.player.firstFrameMs ?? 0) / 1000 + 5
            let allowed = uploadKbps * 125 * (life + 1)
            // Every byte sent on its DataChannels counts, chunks cut short by a cancel included; control messages are
            // not limited (20 kB of margin for them).
            print(String(format: "page %d sent %.0f kB on DataChannels in about %.0f s; the limit allows %.0f kB", p.index,
                         e.wireBytesOut / 1000, life, allowed / 1000))
            #expect(e.wireBytesOut <= allowed + 20_000, "page \(p.index) sent \(e.wireBytesOut) bytes, over its upload limit (\(allowed))")
        }
        #expect(caught >= 1, "no viewer received a forged chunk")
        #expect(caught <= bad.forged)
        // Every forged chunk that arrives whole is checked, in time or not; a starved page may still be receiving one
        // when the run ends.
        CPUSampler.judgeTiming(starved: o.starved, Self.notJudged(o)) {
            #expect(late.isEmpty, "pages that did not play on near the target: \(late)")
            #expect(missed.isEmpty, "every page sent a forged chunk caught it: \(missed)")
        }
    }
}
