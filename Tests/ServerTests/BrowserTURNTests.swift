import Foundation
import ICE
import Server
import Testing
import TestSupport

/// Chromium relays and nothing else: a WHEP viewer with `iceTransportPolicy: 'relay'` and only the ICE servers
/// LiveSwarm hands out (`/api/v1/ice-servers`, credentials minted for the session) plays a WHIP stream through a
/// TURN allocation over UDP, TCP and TLS; the relay is refreshed several times along the way (lifetime shortened
/// to 8 s, so Chromium refreshes every 4 s). And three meeting participants relay-only, over TURN/UDP, TCP and TLS,
/// with the ICE servers the room's `joined` gives.
@Suite(.serialized, .timeLimit(.minutes(4))) struct BrowserTURNTests {
    struct Stats: Decodable {
        var connection: String
        var error: String?
        var framesDecoded: Int?
        var localCandidateType: String?
        var relayProtocol: String?
        var iceServers: [String]?
    }

    @Test(arguments: ["udp", "tcp", "tls"]) func aRelayOnlyViewerPlaysThroughTURN(_ transport: String) async throws {
        // TURN over TLS with a certificate for 127.0.0.1 from a CA the viewer's browser trusts (drive.py --trust-ca).
        let certificates = try TestCertificates.make()
        defer { certificates.remove() }
        let server = try await TestServer.start {
            $0.stun.turn.limits.defaultLifetime = 8
            $0.stun.turn.tls = TURNConfiguration.TLS(port: 0, certificate: certificates.chain, key: certificates.key)
            $0.apiToken = "turn-test"
        }
        defer { Task { await server.stop() } }
        let seconds = 14
        let publisher = try BrowserWebRTCTests.page(server, "role=publish&stream=live/relayed", seconds: seconds + 20)
        defer { publisher.kill(SIGTERM) }
        try await server.waitForWebRTCStream("live/relayed", timeout: .seconds(30))
        let viewer = try Tool.python(Tool.driveArguments(url: "\(server.httpURL)/webrtc/?role=play&stream=live/relayed&relay=1&turn=\(transport)",
                                                         seconds: seconds, statsJS: "return window.webrtcStats()",
                                                         flags: ["--autoplay-policy=no-user-gesture-required"])
                                     + ["--trust-ca", certificates.ca])
        // Read from /api/v1/turn while the page plays: a TCP client's allocation ends with its connection, when the
        // page closes.
        var relays: [String: TURNAPI.Relay] = [:]
        var tokenless: Int?
        var refreshes = 0
        while viewer.isRunning {
            let api = try await TURNAPI.get(server, token: "turn-test")
            for r in api.relays where r.fromPeers.bytes >= relays[r.relay]?.fromPeers.bytes ?? 0 { relays[r.relay] = r }
            refreshes = api.counters?.refreshes ?? 0
            if tokenless == nil, !api.relays.isEmpty { tokenless = try await HTTPGet.fetch(port: server.ports.http, "/api/v1/turn").status }
            try await Task.sleep(for: .seconds(1))
        }
        let s = try await viewer.jsonResult(Stats.self, timeout: .seconds(60))
        print("""
            relay-only viewer over TURN/\(transport): \(s.connection), \(s.framesDecoded ?? 0) frames decoded, local candidate \
            \(s.localCandidateType ?? "-")/\(s.relayProtocol ?? "-"); /api/v1/turn: \
            \(relays.values.map { "\($0.transport) \($0.client ?? "?") -> \($0.relay), from peers \($0.fromPeers.bytes) B, to peers \($0.toPeers.bytes) B" }); \
            refreshes \(refreshes); ICE servers \(s.iceServers ?? [])
            """)
        #expect(s.connection == "connected" && s.error == nil, "\(s.error ?? s.connection)")
        #expect((s.framesDecoded ?? 0) > 100, "decoded \(s.framesDecoded ?? 0) frames in \(seconds) s")
        #expect(s.localCandidateType == "relay" && s.relayProtocol == transport)
        #expect(relays.values.contains { $0.transport == transport && $0.fromPeers.bytes > 100_000 && ($0.user ?? "").hasSuffix(TURNCredentials.sfuScopeSuffix) },
                "/api/v1/turn shows an allocation over \(transport) that carried the media")
        // With an API token set, the relays (their clients and users) only with it.
        #expect(tokenless == 401, "/api/v1/turn without the token: \(tokenless.map(String.init) ?? "not asked")")
        #expect(refreshes >= 3, "the allocation was refreshed \(refreshes) times")
    }

    struct MeetingRun: Decodable {
        struct Path: Decodable { var type: String?; var relayProtocol: String? }
        struct Paths: Decodable { var publish: Path?; var subscribe: Path? }
        var error: String?
        var participants: [BrowserRoomTests.Run.Person]
        var steady: [BrowserRoomTests.Run.Tile]?
        var steadyBusy: Double?
        var paths: [String: Paths?]?
    }

    /// Three meeting participants, each its own Chromium with its own camera colour and tone, relay-only with the
    /// ICE servers the room's `joined` gives: p0 over TURN/UDP, p1 over TURN/TCP, p2 over TURN/TLS. Each sees and
    /// hears the others, both of its PeerConnections run through a relay of that protocol, and /api/v1/turn shows
    /// those allocations carrying the media.
    @Test func threeParticipantsMeetThroughTURNOnly() async throws {
        let certificates = try TestCertificates.make()
        defer { certificates.remove() }
        let server = try await TestServer.start {
            $0.stun.turn.tls = TURNConfiguration.TLS(port: 0, certificate: certificates.chain, key: certificates.key)
            $0.apiToken = "turn-test"
        }
        defer { Task { await server.stop() } }
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("liveswarm-meeting-turn-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: work) }
        let tool = try Tool.python([Tool.checkout.appendingPathComponent("Tests/Browser/meeting.py").path,
                                    "--base", server.httpURL, "--room", "relayed", "--api-token", "turn-test", "--workdir", work,
                                    "--participants", "3", "--steady-only", "--relay", "--trust-ca", certificates.ca])
        // The most each transport's allocations carried from peers (the SFU) while the pages ran.
        var carried: [String: Int] = [:]
        while tool.isRunning {
            let api = try await TURNAPI.get(server, token: "turn-test")
            for r in api.relays { carried[r.transport] = max(carried[r.transport] ?? 0, r.fromPeers.bytes) }
            try await Task.sleep(for: .seconds(1))
        }
        let run = try await tool.jsonResult(MeetingRun.self, timeout: .seconds(150))
        print(tool.errorOutput.split(separator: "\n").filter { $0.hasPrefix("meeting:") }.joined(separator: "\n"))
        #expect(run.error == nil, "\(run.error ?? "")")
        let steady = run.steady ?? []
        #expect(steady.count == 6, "\(steady.map { "\($0.viewer)>\($0.tile)" })")
        let starved = (run.steadyBusy ?? 0) >= 0.7 && steady.contains { $0.fps10s < 10 }
        for t in steady {
            let tone = run.participants.first { $0.name == t.tile }?.tone ?? 0
            print("\(t.viewer) sees \(t.tile) through TURN: \(t.fps10s) fps, colour \(t.seenColor ?? []), tone \(t.heardHz ?? 0) Hz")
            #expect(BrowserRoomTests.nearest(t.seenColor, in: run.participants) == t.tile, "\(t.viewer)'s tile for \(t.tile) shows \(t.seenColor ?? [])")
            #expect(abs((t.heardHz ?? 0) - tone) <= 15, "\(t.viewer) hears \(t.heardHz ?? 0) Hz from \(t.tile) (\(tone) Hz)")
            CPUSampler.judgeTiming(starved: starved, "CPUs \(Int((run.steadyBusy ?? 0) * 100)) % busy") {
                #expect(t.fps10s >= 10, "\(t.viewer) decodes \(t.tile) at \(t.fps10s) fps")
            }
        }
        for (name, transport) in [("p0", "udp"), ("p1", "tcp"), ("p2", "tls")] {
            let paths = run.paths?[name] ?? nil
            print("\(name): publish \(paths?.publish?.type ?? "-")/\(paths?.publish?.relayProtocol ?? "-"), subscribe \(paths?.subscribe?.type ?? "-")/\(paths?.subscribe?.relayProtocol ?? "-")")
            for path in [paths?.publish, paths?.subscribe] {
                #expect(path?.type == "relay" && path?.relayProtocol == transport, "\(name) goes through a TURN/\(transport) relay")
            }
        }
        print("/api/v1/turn: bytes from peers by transport \(carried)")
        // A 320x240 camera at 15 fps for the ten seconds of steady state is some 70 kB; STUN and RTCP alone are under 10.
        #expect((carried["udp"] ?? 0) > 30_000 && (carried["tcp"] ?? 0) > 30_000 && (carried["tls"] ?? 0) > 30_000, "\(carried)")
    }

    /// `GET /api/v1/turn` as a client reads it.
    struct TURNAPI: Decodable {
        struct Traffic: Decodable { var packets: Int; var bytes: Int }
        struct Relay: Decodable {
            var transport: String
            var relay: String
            var toPeers: Traffic
            var fromPeers: Traffic
            var client: String?
            var user: String?
        }
        struct Counters: Decodable { var refreshes: Int; var relayedBytes: Int }
        var enabled: Bool
        var counters: Counters?
        var relays: [Relay]

        static func get(_ server: TestServer, token: String?) async throws -> TURNAPI {
            let r = try await HTTPGet.fetch(port: server.ports.http, "/api/v1/turn", headers: token.map { ["Authorization": "Bearer \($0)"] } ?? [:])
            return try JSONDecoder().decode(TURNAPI.self, from: r.body)
        }
    }
}
