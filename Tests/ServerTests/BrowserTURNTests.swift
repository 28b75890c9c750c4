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
        let server = try await TestServer.start { $0.stun.turn.defaultLifetime = 8 }
        defer { Task { await server.stop() } }
        let seconds = 20
        let publisher = try BrowserWebRTCTests.page(server, "role=publish&stream=live/relayed", seconds: seconds + 20)
        defer { publisher.kill(SIGTERM) }
        try await server.waitForWebRTCStream("live/relayed", timeout: .seconds(30))
        let viewer = try BrowserWebRTCTests.page(server, "role=play&stream=live/relayed&relay=1&turn=\(transport)", seconds: seconds)
        let allocations = try #require(server.swarm.turnAllocations)
        // Read while the page plays: a TCP client's allocation ends with its connection, when the page closes.
        var summaries: [String: Allocations.Summary] = [:]
        while viewer.isRunning {
            for a in allocations.summaries(now: 0) where a.fromPeers.bytes >= summaries[a.client]?.fromPeers.bytes ?? 0 { summaries[a.client] = a }
            try await Task.sleep(for: .seconds(1))
        }
        let s = try await viewer.jsonResult(Stats.self, timeout: .seconds(60))
        print("""
            relay-only viewer over TURN/\(transport): \(s.connection), \(s.framesDecoded ?? 0) frames decoded, local candidate \
            \(s.localCandidateType ?? "-")/\(s.relayProtocol ?? "-"); allocations: \
            \(summaries.values.map { "\($0.client) -> \($0.relay), from peers \($0.fromPeers.bytes) B, to peers \($0.toPeers.bytes) B" }); \
            refreshes \(allocations.snapshot.refreshes); ICE servers \(s.iceServers ?? [])
            """)
        #expect(s.connection == "connected" && s.error == nil, "\(s.error ?? s.connection)")
        #expect((s.framesDecoded ?? 0) > 100, "decoded \(s.framesDecoded ?? 0) frames in \(seconds) s")
        #expect(s.localCandidateType == "relay" && s.relayProtocol == transport)
        #expect(summaries.values.contains { $0.client.hasPrefix(transport) && $0.fromPeers.bytes > 100_000 && $0.user.hasSuffix(TURNCredentials.sfuScopeSuffix) },
                "an allocation over \(transport) carried the media")
        #expect(allocations.snapshot.refreshes >= 3, "the allocation was refreshed \(allocations.snapshot.refreshes) times")
    }
}
