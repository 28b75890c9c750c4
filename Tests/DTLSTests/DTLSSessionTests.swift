import Foundation
import DTLS
import Testing
import TestSupport

/// Two DTLS sessions talking to each other in memory, with the test carrying (or losing, or corrupting) their
/// datagrams and running their timers.
@Suite struct DTLSSessionTests {
    static let serverCertificate = try! Certificate()
    static let clientCertificate = try! Certificate()

    struct Pair {
        let server: DTLSSession
        let client: DTLSSession
        var toServer: [[UInt8]] = []
        var toClient: [[UInt8]] = []
        var largest = 0

        init(serverExpects: Fingerprint = DTLSSessionTests.clientCertificate.fingerprint,
             clientExpects: Fingerprint = DTLSSessionTests.serverCertificate.fingerprint, mtu: Int = 1200,
             clientProfiles: [SRTPProfile] = SRTPProfile.allCases) throws {
            server = try DTLSSession(certificate: DTLSSessionTests.serverCertificate, role: .server, peerFingerprint: serverExpects, mtu: mtu)
            client = try DTLSSession(certificate: DTLSSessionTests.clientCertificate, role: .client, peerFingerprint: clientExpects, mtu: mtu,
                                     srtpProfiles: clientProfiles)
            toServer = client.start().datagrams
        }

        /// Carries datagrams both ways until both sides go quiet; `drop` decides which are lost.
        mutating func run(rounds: Int = 20, drop: (_ toServer: Bool, _ index: Int) -> Bool = { _, _ in false }) {
            var sent = 0
            for _ in 0..<rounds {
                if toServer.isEmpty && toClient.isEmpty { return }
                for d in toServer {
                    sent += 1
                    largest = max(largest, d.count)
                    if !drop(true, sent) { toClient += server.receive(d).datagrams }
                }
                toServer = []
                for d in toClient {
                    sent += 1
                    largest = max(largest, d.count)
                    if !drop(false, sent) { toServer += client.receive(d).datagrams }
                }
                toClient = []
            }
        }
    }

    func keys(_ s: DTLSSession) -> SRTPKeys? {
        if case .connected(let k) = s.state { return k }
        return nil
    }

    @Test func handshakeAgreesOnMirroredSRTPKeysWithGCMFirst() throws {
        var pair = try Pair()
        pair.run()
        let server = try #require(keys(pair.server), "server: \(pair.server.state)")
        let client = try #require(keys(pair.client), "client: \(pair.client.state)")
        #expect(server.profile == .aeadAes128Gcm, "AEAD is preferred when both offer it")
        #expect(server.local == client.remote && server.remote == client.local)
        #expect(server.local.count == 28 && server.local != server.remote)
        #expect(pair.server.version == "DTLSv1.2" && pair.server.cipher.hasPrefix("ECDHE-ECDSA"))
        #expect(pair.largest <= 1200, "no datagram beyond the MTU")
        #expect(pair.server.timeout == nil)
    }

    /// A client that offers one profile gets it (the load generator holds the server to AES-CM so).
    @Test(arguments: SRTPProfile.allCases)
    func aClientOfferingOneProfileGetsIt(profile: SRTPProfile) throws {
        var pair = try Pair(clientProfiles: [profile])
        pair.run()
        #expect(keys(pair.server)?.profile == profile && keys(pair.client)?.profile == profile)
    }

    /// The certificate flight is split to the MTU and never glued back together.
    @Test func smallMTUSplitsTheFlights() throws {
        var pair = try Pair(mtu: 400)
        pair.run()
        #expect(keys(pair.server) != nil && keys(pair.client) != nil)
        #expect(pair.largest <= 400, "largest datagram \(pair.largest)")
    }

    @Test func wrongFingerprintFailsTheHandshakeOnBothRoles() throws {
        let other = try Certificate().fingerprint
        var pair = try Pair(serverExpects: other)
        pair.run()
        #expect(pair.server.state == .failed(.fingerprintMismatch(expected: other, got: Self.clientCertificate.fingerprint)))
        var reverse = try Pair(clientExpects: other)
        reverse.run()
        guard case .failed(.fingerprintMismatch) = reverse.client.state else {
            Issue.record("client: \(reverse.client.state)")
            return
        }
        #expect(keys(reverse.client) == nil)
    }

    /// The server's flight is lost once; the client's timer retransmits and the handshake completes.
    /// OpenSSL keeps its own clock for this timer (RFC 6347 4.2.4.1: 1 s at first), so this test waits for it.
    @Test func lostFlightIsRetransmittedOnTheTimer() async throws {
        var pair = try Pair()
        pair.run(rounds: 1) { toServer, _ in !toServer }  // everything to the client is lost
        #expect(keys(pair.client) == nil)
        let timeout = try #require(pair.client.timeout, "the client runs a retransmission timer")
        #expect(timeout <= .seconds(1))
        #expect(pair.client.handleTimeout().datagrams.isEmpty, "nothing is resent before the timer runs out")
        try await Task.sleep(for: timeout + .milliseconds(20))
        pair.toServer += pair.client.handleTimeout().datagrams
        #expect(!pair.toServer.isEmpty, "the ClientHello was sent again")
        pair.run()
        #expect(keys(pair.server) != nil && keys(pair.client) != nil)
    }

    @Test func applicationDataFlowsBothWays() throws {
        var pair = try Pair()
        pair.run()
        let out = pair.client.send(Array("hello".utf8))
        let got = out.datagrams.flatMap { pair.server.receive($0).data }
        #expect(got == [Array("hello".utf8)])
        let close = pair.server.close()
        #expect(pair.server.state == .closed)
        for d in close.datagrams { _ = pair.client.receive(d) }
        #expect(pair.client.state == .closed, "close_notify closes the peer")
    }

    /// Garbage before and during the handshake: a clean failure or nothing, never a crash; a session that
    /// failed stays failed and says why.
    @Test func garbageNeverCrashes() throws {
        var rng = SplitMix64(state: 5)
        for trial in 0..<200 {
            let server = try DTLSSession(certificate: Self.serverCertificate, role: .server,
                                         peerFingerprint: Self.clientCertificate.fingerprint)
            let n = 1 + Int(rng.next() % 600)
            var bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            bytes[0] = UInt8(20 + trial % 44)  // what the media port would call DTLS
            if n > 2 && trial % 2 == 0 { bytes[1] = 0xFE; bytes[2] = 0xFD }
            let out = server.receive(bytes)
            if case .failed(let why) = server.state { #expect(!why.description.isEmpty) }
            #expect(out.data.isEmpty)
            _ = server.receive(bytes)
        }
        // A real handshake still works after a garbage datagram reached the server first.
        var pair = try Pair()
        _ = pair.server.receive([22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0])
        pair.run()
        #expect(keys(pair.server) != nil)
    }

    @Test func certificateRoundTripsThroughPEM() throws {
        let c = try Certificate()
        #expect(c.certificatePEM.hasPrefix("-----BEGIN CERTIFICATE-----") && c.keyPEM.contains("PRIVATE KEY"))
        let loaded = try Certificate(certificatePEM: c.certificatePEM, keyPEM: c.keyPEM)
        #expect(loaded.fingerprint == c.fingerprint)
        #expect(throws: DTLSError.self) { try Certificate(certificatePEM: "junk", keyPEM: c.keyPEM) }
        #expect(throws: DTLSError.self) { try Certificate(certificatePEM: c.certificatePEM, keyPEM: Self.serverCertificate.keyPEM) }
    }

    @Test func fingerprintSDPForm() throws {
        let f = Self.serverCertificate.fingerprint
        #expect(Fingerprint(sdp: f.sdpValue) == f)
        #expect(Fingerprint(sdp: f.sdpValue.replacingOccurrences(of: "sha-256", with: "SHA-256")) == f)
        #expect(Fingerprint(sdp: "sha-1 " + f.sdpValue.dropFirst(8)) == nil)
        #expect(Fingerprint(sdp: "sha-256 AB:CD") == nil)
        #expect(Fingerprint(sdp: "sha-256 " + String(repeating: "ZZ:", count: 31) + "ZZ") == nil)
    }
}
