import Foundation
import ICE
import Server
import Testing
import TestSupport

/// Headless Chromium against the media port's ICE-lite agent, through `web-demo/net-check` (an offer with one
/// DataChannel, answered by `POST /api/v1/rtc/probe`): ICE must connect, once with only the UDP candidate and
/// once with only the TCP one (ICE-TCP), and the page reports the pair; then DTLS-SRTP completes on it.
/// The page stays open longer than the consent timeout (so consent must be renewed by the browser's checks);
/// once it closes, the server drops the session when consent expires.
@Suite(.serialized, .timeLimit(.minutes(5))) struct BrowserICETests {
    static let consentTimeout = 5

    struct Result: Decodable {
        struct Pair: Decodable {
            var local: String?
            var remote: String?
            var rttMs: Double?
            var localAddress: String?
            var localType: String?
            var relayProtocol: String?
        }
        struct DTLS: Decodable { var state: String?; var version: String?; var cipher: String?; var srtpCipher: String? }
        struct ServerDTLS: Decodable { var dtlsState: String; var srtpProfile: String?; var dtlsCipher: String?; var failure: String? }
        struct Server: Decodable {
            var dtls: ServerDTLS
            var id: String
            var state: String
            var closeReason: String?
            var selected: String?
            var checks: Int
            var dtlsPackets: Int
            var ageMs: Int
        }
        var state: String
        var states: [String]
        var connectedMs: Double?
        var dtlsConnectedMs: Double?
        var connectionState: String?
        var dtls: DTLS?
        var selectedPair: Pair?
        var server: Server?
        var error: String?
    }

    static func check(_ transport: String, seconds: Int) async throws -> (Result, TestServer) {
        let server = try await TestServer.start { $0.rtc.agent.consentTimeout = .seconds(Int64(consentTimeout)) }
        let driver = try Tool.drive(
            url: "\(server.httpURL)/net-check/?transport=\(transport)&keep=1", seconds: seconds,
            statsJS: """
                const r = window.netCheck['\(transport)'] || {};
                return { state: r.state || 'none', states: r.states || [], connectedMs: r.connectedMs, selectedPair: r.selectedPair,
                         server: r.server, error: r.error, dtlsConnectedMs: r.dtlsConnectedMs, connectionState: r.connectionState,
                         dtls: r.dtls };
                """,
            // DataChannel-only pages otherwise hide their addresses behind mDNS names (INTEROP.md).
            flags: ["--disable-features=WebRtcHideLocalIpsWithMdns"])
        do {
            return (try await driver.jsonResult(Result.self, timeout: .seconds(Int64(seconds) + 60)), server)
        } catch {
            await server.stop()
            throw error
        }
    }

    /// After the page closed: the probe is closed for consent expiry, within the timeout plus a margin.
    static func waitForConsentExpiry(_ server: TestServer, probe: String) async throws -> Duration {
        let closedAt = ContinuousClock.now
        var last = ""
        while ContinuousClock.now - closedAt < .seconds(Int64(consentTimeout) + 5) {
            let r = try await HTTPGet.fetch(port: server.ports.http, "/api/v1/rtc/probe/\(probe)")
            last = r.text
            if last.contains("\"closed\"") {
                #expect(last.contains("consent expired"), "\(last)")
                return ContinuousClock.now - closedAt
            }
            try await Task.sleep(for: .milliseconds(250))
        }
        throw TestFailure("probe \(probe) still open \(consentTimeout + 5) s after the page closed: \(last)")
    }

    @Test(arguments: ["udp", "tcp"])
    func chromiumConnectsAndConsentExpiresAfterThePageCloses(transport: String) async throws {
        let (r, server) = try await Self.check(transport, seconds: 2 * Self.consentTimeout)
        defer { Task { await server.stop() } }
        let s = try #require(r.server, "the page has no server status: \(r.error ?? "-")")
        print("""
            Chromium over \(transport): ICE \(r.states.joined(separator: " → ")) in \(r.connectedMs.map { "\(Int($0)) ms" } ?? "-"); \
            selected pair \(r.selectedPair?.local ?? "?") → \(r.selectedPair?.remote ?? "?"), RTT \(r.selectedPair?.rttMs ?? -1) ms
            server after \(s.ageMs) ms: \(s.state), selected \(s.selected ?? "-"), \(s.checks) checks, \(s.dtlsPackets) DTLS packets
            DTLS in \(r.dtlsConnectedMs.map { "\(Int($0)) ms" } ?? "-"): browser \(r.dtls?.state ?? "-") \(r.dtls?.version ?? "") \
            \(r.dtls?.cipher ?? "") \(r.dtls?.srtpCipher ?? ""); server \(s.dtls.dtlsState) \(s.dtls.srtpProfile ?? "") \
            \(s.dtls.failure ?? "")
            """)
        #expect(r.error == nil)
        #expect(r.state == "connected" || r.state == "completed")
        #expect(r.selectedPair?.remote?.hasPrefix("\(transport) ") == true, "the pair uses \(transport)")
        #expect(r.selectedPair?.remote?.contains(":\(transport == "udp" ? server.ports.rtcUDP : server.ports.rtcTCP ?? -1) ") == true)
        // Alive past the consent timeout while the page was open: the browser's checks renewed consent.
        #expect(s.state == "connected" && s.ageMs > Self.consentTimeout * 1000, "\(s)")
        #expect(s.selected?.hasPrefix(transport) == true)
        // Both ends agree on the pair: the server sends to the very socket (or connection) the browser selected.
        #expect(s.selected == r.selectedPair?.localAddress.map { "\(transport) \($0)" },
                "server \(s.selected ?? "-"), browser \(r.selectedPair?.local ?? "-")")
        #expect(s.dtlsPackets > 0, "the DTLS ClientHello reached the session's handler")
        // DTLS-SRTP over that pair, each side checking the other's certificate against the SDP.
        #expect(r.connectionState == "connected", "RTCPeerConnection.connectionState \(r.connectionState ?? "-")")
        #expect(r.dtls?.state == "connected" && r.dtls?.srtpCipher != nil)
        #expect(s.dtls.dtlsState == "connected" && s.dtls.failure == nil)
        #expect(s.dtls.srtpProfile == r.dtls?.srtpCipher, "both ends name the same SRTP profile")
        // DTLS starts as soon as ICE does: no flight waits for a retransmission timer (1 s).
        if let ice = r.connectedMs, let dtls = r.dtlsConnectedMs { #expect(dtls - ice < 800, "DTLS took \(Int(dtls - ice)) ms after ICE") }
        let took = try await Self.waitForConsentExpiry(server, probe: s.id)
        print("session \(s.id) closed \(took) after the browser quit (consent timeout \(Self.consentTimeout) s)")
    }

    /// The page's TURN checks: relays only, over TURN/UDP, TCP and TLS in turn, with the ICE servers the server
    /// hands out (its TLS certificate from a CA the browser trusts). Each connects through a relay of that protocol
    /// to the media port, where the server sees it.
    @Test func turnChecksSayWhichRelaysWork() async throws {
        let certificates = try TestCertificates.make()
        defer { certificates.remove() }
        let server = try await TestServer.start {
            $0.stun.turn.tls = TURNConfiguration.TLS(port: 0, certificate: certificates.chain, key: certificates.key)
        }
        defer { Task { await server.stop() } }
        let driver = try Tool.python(Tool.driveArguments(
            url: "\(server.httpURL)/net-check/?transport=turn", seconds: 12,
            statsJS: """
                const out = {};
                for (const t of ['turn-udp', 'turn-tcp', 'turn-tls']) {
                  const r = window.netCheck[t] || {};
                  out[t] = { state: r.state || 'none', states: r.states || [], connectedMs: r.connectedMs, selectedPair: r.selectedPair,
                             server: r.server, error: r.error, connectionState: r.connectionState };
                }
                return out;
                """) + ["--trust-ca", certificates.ca])
        let results = try await driver.jsonResult([String: Result].self, timeout: .seconds(90))
        for transport in ["udp", "tcp", "tls"] {
            let r = try #require(results["turn-\(transport)"])
            print("TURN/\(transport): \(r.state) in \(r.connectedMs.map { "\(Int($0)) ms" } ?? "-"), \(r.selectedPair?.local ?? r.error ?? "-") → \(r.selectedPair?.remote ?? "-"); server \(r.server?.state ?? "-"), selected \(r.server?.selected ?? "-"), \(r.server?.checks ?? 0) checks, \(r.server?.dtlsPackets ?? 0) DTLS packets")
            #expect(r.state == "connected" || r.state == "completed", "TURN/\(transport): \(r.state) \(r.error ?? "")")
            #expect(r.selectedPair?.localType == "relay" && r.selectedPair?.relayProtocol == transport, "\(String(describing: r.selectedPair))")
            #expect(r.server?.state == "connected" && r.server?.selected?.hasPrefix("udp ") == true, "the media port saw the relay over UDP")
        }
    }
}
