import DTLS
import SRTP
import Testing
import TestSupport

@Suite struct SRTPContextTests {
    static func rtp(seq: UInt16, ssrc: UInt32 = 0x1234_5678, payload: Int = 100) -> [UInt8] {
        [0x80, 96, UInt8(seq >> 8), UInt8(seq & 0xFF), 0, 0, 0x10, 0,
         UInt8(ssrc >> 24), UInt8(ssrc >> 16 & 0xFF), UInt8(ssrc >> 8 & 0xFF), UInt8(ssrc & 0xFF)]
            + (0..<payload).map { UInt8(truncatingIfNeeded: $0 &* 7) }
    }

    /// A receiver report with no blocks.
    static let rtcp: [UInt8] = [0x80, 201, 0, 1, 0x12, 0x34, 0x56, 0x78]

    static func key(_ profile: SRTPProfile, seed: UInt64) -> [UInt8] {
        var rng = SplitMix64(state: seed)
        return (0..<(profile.keyLength + profile.saltLength)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }

    @Test(arguments: SRTPProfile.allCases)
    func protectThenUnprotectRoundTrips(profile: SRTPProfile) throws {
        let k = Self.key(profile, seed: 1)
        let sender = try SRTPContext(profile: profile, masterKey: k, direction: .outbound)
        let receiver = try SRTPContext(profile: profile, masterKey: k, direction: .inbound)
        for seq in UInt16(1)...50 {
            let plain = Self.rtp(seq: seq)
            var packet = plain
            try sender.protectRTP(&packet)
            #expect(packet.count == plain.count + (profile == .aeadAes128Gcm ? 16 : 10))
            #expect(packet[..<12] == plain[..<12] && packet[12...] != plain[12...], "header clear, payload encrypted")
            try receiver.unprotectRTP(&packet)
            #expect(packet == plain)
        }
        var report = Self.rtcp
        try sender.protectRTCP(&report)
        try receiver.unprotectRTCP(&report)
        #expect(report == Self.rtcp)
    }

    @Test(arguments: SRTPProfile.allCases)
    func tamperedReplayedAndWrongKeyAreRefused(profile: SRTPProfile) throws {
        let k = Self.key(profile, seed: 2)
        let sender = try SRTPContext(profile: profile, masterKey: k, direction: .outbound)
        let receiver = try SRTPContext(profile: profile, masterKey: k, direction: .inbound)
        let stranger = try SRTPContext(profile: profile, masterKey: Self.key(profile, seed: 3), direction: .inbound)
        var packet = Self.rtp(seq: 7)
        try sender.protectRTP(&packet)
        var tampered = packet
        tampered[20] ^= 1
        #expect(throws: SRTPError.authenticationFailed) { try receiver.unprotectRTP(&tampered) }
        var other = packet
        #expect(throws: SRTPError.authenticationFailed) { try stranger.unprotectRTP(&other) }
        var good = packet
        try receiver.unprotectRTP(&good)
        var again = packet
        #expect(throws: SRTPError.replayed) { try receiver.unprotectRTP(&again) }
        var short: [UInt8] = [0x80, 96, 0]
        #expect(throws: SRTPError.malformed) { try receiver.unprotectRTP(&short) }
    }

    /// A NACKed packet is protected again with the same sequence number (allow_repeat_tx), and the receiver
    /// that lost the first copy accepts the second.
    @Test func retransmissionCanBeProtectedAgain() throws {
        let k = Self.key(.aes128CmHmacSha1_80, seed: 4)
        let sender = try SRTPContext(profile: .aes128CmHmacSha1_80, masterKey: k, direction: .outbound)
        let receiver = try SRTPContext(profile: .aes128CmHmacSha1_80, masterKey: k, direction: .inbound)
        var first = Self.rtp(seq: 100)
        try sender.protectRTP(&first)
        var next = Self.rtp(seq: 101)
        try sender.protectRTP(&next)
        var resent = Self.rtp(seq: 100)
        try sender.protectRTP(&resent)
        try receiver.unprotectRTP(&next)
        try receiver.unprotectRTP(&resent)
        #expect(resent == Self.rtp(seq: 100))
    }

    @Test func keysFromADTLSHandshakeWorkAcross() throws {
        let a = try Certificate(), b = try Certificate()
        let server = try DTLSSession(certificate: a, role: .server, peerFingerprint: b.fingerprint)
        let client = try DTLSSession(certificate: b, role: .client, peerFingerprint: a.fingerprint)
        var toServer = client.start().datagrams
        for _ in 0..<10 {
            let toClient = toServer.flatMap { server.receive($0).datagrams }
            toServer = toClient.flatMap { client.receive($0).datagrams }
        }
        guard case .connected(let sk) = server.state, case .connected(let ck) = client.state else {
            throw TestFailure("no handshake: \(server.state) \(client.state)")
        }
        let out = try SRTPContext(profile: sk.profile, masterKey: sk.local, direction: .outbound)
        let into = try SRTPContext(profile: ck.profile, masterKey: ck.remote, direction: .inbound)
        var packet = Self.rtp(seq: 1)
        try out.protectRTP(&packet)
        try into.unprotectRTP(&packet)
        #expect(packet == Self.rtp(seq: 1))
        #expect(throws: SRTPError.badKeyLength(expected: 28, got: 3)) {
            try SRTPContext(profile: .aeadAes128Gcm, masterKey: [1, 2, 3], direction: .inbound)
        }
    }
}
