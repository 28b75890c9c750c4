import Foundation
import ICE
import Server
import Testing
import TestSupport

/// Chromium relays and nothing else: a WHEP viewer with `iceTransportPolicy: 'relay'` and only the ICE servers
/// LiveSwarm hands out (`/api/v1/ice-servers`, credentials minted for the session) plays a WHIP stream through a
/// TURN allocation over UDP, then over TCP; the relay is refreshed several times along the way (lifetime shortened
/// to 8 s, so Chromium refreshes every 4 s).
@Suite(.serialized, .timeLimit(.minutes(4))) struct BrowserTURNTests {
    struct Stats: Decodable {
        var connection: String
        var error: String?
        var framesDecoded: Int?
        var localCandidateType: String?
        var relayProtocol: String?
        var iceServers: [String]?
    }

    @Test(arguments: ["udp", "tcp"]) func aRelayOnlyViewerPlaysThroughTURN(_ transport: String) async throws {
        let server = try await TestServer.start {
            $0.stun.turn.limits.defaultLifetime = 8
            $0.apiToken = "turn-test"
        }
        defer { Task { await server.stop() } }
        let seconds = 20
        let publisher = try BrowserWebRTCTests.page(server, "role=publish&stream=live/relayed", seconds: seconds + 20)
        defer { publisher.kill(SIGTERM) }
        try await server.waitForWebRTCStream("live/relayed", timeout: .seconds(30))
        let viewer = try BrowserWebRTCTests.page(server, "role=play&stream=live/relayed&relay=1&turn=\(transport)", seconds: seconds)
        // Read from /api/v1/turn while the page plays: a TCP client's allocation ends with its connection, when the
        // page closes.
        var relays: [String: TURNAPI.Relay] = [:]
        var publicView: TURNAPI?
        var refreshes = 0
        while viewer.isRunning {
            let api = try await TURNAPI.get(server, token: "turn-test")
            for r in api.relays where r.fromPeers.bytes >= relays[r.relay]?.fromPeers.bytes ?? 0 { relays[r.relay] = r }
            refreshes = api.counters?.refreshes ?? 0
            if publicView == nil, !api.relays.isEmpty { publicView = try await TURNAPI.get(server, token: nil) }
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
        // Without the token, what is relayed but not who.
        let anonymous = try #require(publicView?.relays.first)
        #expect(anonymous.client == nil && anonymous.user == nil && anonymous.relay.hasPrefix("127.0.0.1:"))
        #expect(refreshes >= 3, "the allocation was refreshed \(refreshes) times")
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
