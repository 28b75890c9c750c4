import DTLS
import Foundation
import NIOCore
import Server
import SRTP
import STUN
import Testing
import TestSupport

/// DTLS-SRTP on the media port, with our own DTLS client over a real UDP socket playing the browser: the
/// handshake, the certificate check against the offer's fingerprint, and SRTP packets that do or do not
/// authenticate.
@Suite(.serialized, .timeLimit(.minutes(5))) struct WebRTCTransportTests {
    /// The probe offer with `certificate`'s fingerprint.
    static func offer(_ certificate: Certificate) -> String {
        MediaPortTests.offer.replacingOccurrences(
            of: "a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF",
            with: "a=fingerprint:\(certificate.fingerprint.sdpValue)")
    }

    /// Runs the client side of the handshake over the ICE-validated socket until it settles.
    static func handshake(_ client: DTLSSession, over socket: UDPTestClient, port: Int) async throws {
        try await handshake(client, over: UDPLink(socket: socket, port: port))
    }

    static func handshake(_ client: DTLSSession, over link: any PeerLink) async throws {
        var outgoing = client.start().datagrams
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            for d in outgoing { try await link.send(d) }
            outgoing = []
            if case .connected = client.state { return }
            if case .failed = client.state { return }
            guard let reply = await link.receive(timeout: .milliseconds(300)) else {
                outgoing = client.handleTimeout().datagrams
                continue
            }
            guard let first = reply.first, (20...63).contains(first) else { continue }  // STUN answers
            outgoing = client.receive(reply).datagrams
        }
    }

    static func dtlsStatus(_ server: TestServer, _ probe: MediaPortTests.Probe) async throws -> [String: Any] {
        try #require(try await MediaPortTests.status(server, probe)["dtls"] as? [String: Any])
    }

    static func answerFingerprint(_ probe: MediaPortTests.Probe) throws -> Fingerprint {
        let line = try #require(probe.answer.components(separatedBy: "\r\n").first { $0.hasPrefix("a=fingerprint:") })
        return try #require(Fingerprint(sdp: String(line.dropFirst("a=fingerprint:".count))))
    }

    @Test func handshakeThenSRTPAuthenticatesAndTamperedPacketsAreDropped() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let mine = try Certificate()
        let probe = try await MediaPortTests.openProbe(server, offer: Self.offer(mine))
        let socket = try await MediaPortTests.connectGoodPeer(server, probe)
        defer { socket.close() }
        let client = try DTLSSession(certificate: mine, role: .client, peerFingerprint: try Self.answerFingerprint(probe))
        try await Self.handshake(client, over: socket, port: server.ports.rtcUDP)
        guard case .connected(let keys) = client.state else { throw TestFailure("client: \(client.state)") }
        try await server.waitUntil("the server side of DTLS", timeout: .seconds(5)) {
            try await Self.dtlsStatus(server, probe)["dtlsState"] as? String == "connected"
        }
        #expect(try await Self.dtlsStatus(server, probe)["srtpProfile"] as? String == keys.profile.description)

        let protect = try SRTPContext(profile: keys.profile, masterKey: keys.local, direction: .outbound)
        for seq in UInt16(1)...10 {
            var p = SRTPContextTestsPacket.rtp(seq: seq)
            try protect.protectRTP(&p)
            if seq > 5 { p[p.count - 1] ^= 0xFF }  // the last five fail authentication
            try await socket.send(p, to: server.ports.rtcUDP)
        }
        var rtcp: [UInt8] = [0x80, 201, 0, 1, 0x12, 0x34, 0x56, 0x78]
        try protect.protectRTCP(&rtcp)
        try await socket.send(rtcp, to: server.ports.rtcUDP)
        try await server.waitUntil("SRTP counted", timeout: .seconds(5)) {
            let d = try await Self.dtlsStatus(server, probe)
            return d["rtpPacketsIn"] as? Int == 5 && d["srtpDropped"] as? Int == 5 && d["rtcpPacketsIn"] as? Int == 1
        }
    }

    /// `rtc.certificate_file` and `rtc.key_file`: a certificate made by the openssl command is the one the server
    /// answers with (its fingerprint as openssl prints it) and completes a handshake with; an RSA key, a key of
    /// another certificate and a missing file stop the server with the files named.
    @Test func certificateFromFiles() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("liveswarm-cert-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
        func make(_ name: String, key: [String]) async throws {
            _ = try await Tool.run("openssl", ["req", "-x509", "-newkey"] + key + ["-nodes", "-keyout", path("\(name)-key.pem"),
                                   "-out", path("\(name)-cert.pem"), "-days", "30", "-subj", "/CN=liveswarm-test"])
        }
        try await make("ec", key: ["ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
        try await make("ec2", key: ["ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
        try await make("rsa", key: ["rsa:2048"])
        // "sha256 Fingerprint=AB:CD:..." (or "SHA256 Fingerprint=" on older versions)
        let printed = try await Tool.run("openssl", ["x509", "-noout", "-fingerprint", "-sha256", "-in", path("ec-cert.pem")])
        let expected = try #require(printed.split(separator: "=").last).trimmingCharacters(in: .whitespacesAndNewlines)

        let server = try await TestServer.start {
            $0.dtlsCertificate = DTLSCertificateFiles(certificate: path("ec-cert.pem"), key: path("ec-key.pem"))
        }
        defer { Task { await server.stop() } }
        let mine = try Certificate()
        let probe = try await MediaPortTests.openProbe(server, offer: Self.offer(mine))
        #expect(try Self.answerFingerprint(probe).sdpValue == "sha-256 \(expected)")
        let socket = try await MediaPortTests.connectGoodPeer(server, probe)
        defer { socket.close() }
        let client = try DTLSSession(certificate: mine, role: .client, peerFingerprint: try Self.answerFingerprint(probe))
        try await Self.handshake(client, over: socket, port: server.ports.rtcUDP)
        guard case .connected = client.state else { throw TestFailure("client with the server's file certificate: \(client.state)") }

        for (certificate, key, message) in [("rsa-cert.pem", "rsa-key.pem", "the key must be ECDSA P-256"),
                                            ("ec-cert.pem", "ec2-key.pem", "the key does not belong to the certificate"),
                                            ("ec-cert.pem", "missing-key.pem", "cannot read")] {
            do {
                let wrong = try await TestServer.start { $0.dtlsCertificate = DTLSCertificateFiles(certificate: path(certificate), key: path(key)) }
                await wrong.stop()
                Issue.record("\(certificate) with \(key): the server started")
            } catch {
                #expect("\(error)".contains("rtc.key_file \(path(key))") && "\(error)".contains(message), "\(error)")
            }
        }
    }

    /// The client's certificate is not the one the offer named: the server fails the handshake and says why;
    /// another session on the same port is unaffected.
    @Test func wrongFingerprintFailsCleanly() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let named = try Certificate(), used = try Certificate()
        let probe = try await MediaPortTests.openProbe(server, offer: Self.offer(named))
        let socket = try await MediaPortTests.connectGoodPeer(server, probe)
        defer { socket.close() }
        let client = try DTLSSession(certificate: used, role: .client, peerFingerprint: try Self.answerFingerprint(probe))
        try await Self.handshake(client, over: socket, port: server.ports.rtcUDP)
        try await server.waitUntil("the server to refuse the certificate", timeout: .seconds(5)) {
            try await Self.dtlsStatus(server, probe)["dtlsState"] as? String == "failed"
        }
        let failure = try await Self.dtlsStatus(server, probe)["failure"] as? String ?? ""
        #expect(failure.contains("fingerprint"), "\(failure)")

        // A second, honest session on the same port completes.
        let probe2 = try await MediaPortTests.openProbe(server, offer: Self.offer(used))
        let socket2 = try await MediaPortTests.connectGoodPeer(server, probe2)
        defer { socket2.close() }
        let client2 = try DTLSSession(certificate: used, role: .client, peerFingerprint: try Self.answerFingerprint(probe2))
        try await Self.handshake(client2, over: socket2, port: server.ports.rtcUDP)
        guard case .connected = client2.state else { throw TestFailure("second session: \(client2.state)") }
    }

    /// DTLS-looking garbage from the validated peer, then SRTP before any handshake: dropped and counted; the
    /// handshake that follows still completes.
    @Test func garbageBeforeTheHandshake() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let mine = try Certificate()
        let probe = try await MediaPortTests.openProbe(server, offer: Self.offer(mine))
        let socket = try await MediaPortTests.connectGoodPeer(server, probe)
        defer { socket.close() }
        var rng = SplitMix64(state: 9)
        for i in 0..<200 {
            var junk = (0..<(13 + Int(rng.next() % 200))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            junk[0] = i % 2 == 0 ? 23 : 0x80  // DTLS application data, or RTP
            try await socket.send(junk, to: server.ports.rtcUDP)
        }
        try await server.waitUntil("the RTP junk counted as dropped", timeout: .seconds(5)) {
            (try await Self.dtlsStatus(server, probe)["srtpDropped"] as? Int ?? 0) >= 100
        }
        let client = try DTLSSession(certificate: mine, role: .client, peerFingerprint: try Self.answerFingerprint(probe))
        try await Self.handshake(client, over: socket, port: server.ports.rtcUDP)
        let state = try await Self.dtlsStatus(server, probe)["dtlsState"] as? String
        guard case .connected = client.state else { throw TestFailure("client \(client.state), server \(state ?? "-")") }
    }
}

/// Shared with the SRTP unit tests' shape, local to this target.
enum SRTPContextTestsPacket {
    static func rtp(seq: UInt16) -> [UInt8] {
        [0x80, 96, UInt8(seq >> 8), UInt8(seq & 0xFF), 0, 0, 0x10, 0, 0x12, 0x34, 0x56, 0x78] + [UInt8](repeating: 0x5A, count: 100)
    }
}
