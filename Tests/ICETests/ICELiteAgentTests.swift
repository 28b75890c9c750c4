import ICE
import STUN
import Testing
import TestSupport

/// The ICE-lite agent driven by hand-made checks and an injected clock: no sockets, no sleeping.
@Suite struct ICELiteAgentTests {
    typealias Agent = ICELiteAgent
    let t0 = ContinuousClock.now
    static let local = ICECredentials(ufrag: "srvU", password: "serverpassword0123456789")
    static let browser = PeerAddress(transport: .udp, ipv4: 0xC000_0201, port: 50000)  // 192.0.2.1
    static let moved = PeerAddress(transport: .udp, ipv4: 0xC000_0202, port: 50001)

    static func agent(_ configure: (inout Agent.Configuration) -> Void = { _ in }) -> (Agent, Agent.SessionID, ContinuousClock.Instant) {
        var c = Agent.Configuration()
        configure(&c)
        var a = Agent(configuration: c)
        let now = ContinuousClock.now
        let id = a.addSession(local: local, remoteUfrag: "brwU", now: now)!
        return (a, id, now)
    }

    /// A connectivity check as a browser sends it: USERNAME, PRIORITY, ICE-CONTROLLING, maybe USE-CANDIDATE,
    /// MESSAGE-INTEGRITY with `password`, FINGERPRINT.
    static func check(username: String = "srvU:brwU", password: String = local.password, useCandidate: Bool = false,
                      controlled: Bool = false, integrity: Bool = true) -> [UInt8] {
        var m = Message(type: .bindingRequest, transactionID: (0..<12).map { _ in UInt8.random(in: 0...255) })
            .adding(.username, Array(username.utf8))
            .adding(.priority, [0x6E, 0x7F, 0x1E, 0xFF])
        m = controlled ? m.adding(.iceControlled, [UInt8](repeating: 7, count: 8)) : m.adding(.iceControlling, [UInt8](repeating: 9, count: 8))
        if useCandidate { m = m.adding(.useCandidate, []) }
        return m.encode(integrityKey: integrity ? Array(password.utf8) : nil, fingerprint: true)
    }

    func response(_ outcome: Agent.Outcome) throws -> (Message, Agent.SessionID?, [Agent.Event]) {
        guard case .reply(let bytes, let session, let events) = outcome else { throw TestFailure("no reply: \(outcome)") }
        return (try Message(parsing: bytes), session, events)
    }

    @Test func validCheckIsAnsweredWithIntegrityAndSelectsOnUseCandidate() throws {
        var (a, id, now) = Self.agent()
        let (r1, s1, e1) = try response(a.handleSTUN(Self.check(), from: Self.browser, now: now))
        #expect(r1.type == .bindingSuccess && s1 == id && e1.isEmpty)
        #expect(try r1.xorMappedAddress() == Self.browser.stunAddress)
        #expect(r1.messageIntegrityIsValid(key: Array(Self.local.password.utf8)) == true)
        #expect(r1.fingerprintIsValid == true)
        #expect(a.sessions[id]?.state == .checking && a.sessions[id]?.selected == nil, "no nomination yet")
        #expect(a.session(for: Self.browser) == id, "a valid check validates the address for media")

        let (_, _, e2) = try response(a.handleSTUN(Self.check(useCandidate: true), from: Self.browser, now: now))
        #expect(e2 == [.selected(id, Self.browser, previous: nil)])
        #expect(a.sessions[id]?.state == .connected && a.sessions[id]?.selected == Self.browser)
        let (_, _, e3) = try response(a.handleSTUN(Self.check(useCandidate: true), from: Self.browser, now: now))
        #expect(e3.isEmpty, "a repeated nomination is not a new event")
    }

    /// Wrong password, unknown ufrag, wrong remote ufrag: 401 without MESSAGE-INTEGRITY, and nothing changes.
    @Test(arguments: [
        ("wrong password", check(password: "not-the-password-at-all-x")),
        ("unknown ufrag", check(username: "nope:brwU")),
        ("wrong remote ufrag", check(username: "srvU:other")),
        ("no remote ufrag", check(username: "srvU")),
    ])
    func badCredentialsGet401AndNoState(_ name: String, _ bytes: [UInt8]) throws {
        var (a, id, now) = Self.agent()
        let before = a.sessions
        let (r, s, e) = try response(a.handleSTUN(bytes, from: Self.browser, now: now))
        #expect(r.type == .bindingError && s == nil && e.isEmpty, "\(name)")
        #expect(try r.errorCode()?.code == 401)
        #expect(!r.hasMessageIntegrity, "an unauthenticated request gets no MESSAGE-INTEGRITY")
        #expect(a.sessions == before && a.session(for: Self.browser) == nil)
        _ = id
    }

    @Test func missingUsernameOrIntegrityIs400() throws {
        var (a, _, now) = Self.agent()
        let noIntegrity = Self.check(integrity: false)
        #expect(try response(a.handleSTUN(noIntegrity, from: Self.browser, now: now)).0.errorCode()?.code == 400)
        let noUsername = Message(type: .bindingRequest, transactionID: [UInt8](repeating: 1, count: 12))
            .encode(integrityKey: Array(Self.local.password.utf8), fingerprint: true)
        #expect(try response(a.handleSTUN(noUsername, from: Self.browser, now: now)).0.errorCode()?.code == 400)
        #expect(a.session(for: Self.browser) == nil)
    }

    @Test func garbageBadFingerprintAndNonRequestsAreDropped() throws {
        var (a, _, now) = Self.agent()
        var badFingerprint = Self.check()
        badFingerprint[badFingerprint.count - 1] ^= 1
        let indication = Message(type: MessageType(method: .binding, messageClass: .indication),
                                 transactionID: [UInt8](repeating: 2, count: 12)).encode(fingerprint: true)
        let response = Message(type: .bindingSuccess, transactionID: [UInt8](repeating: 3, count: 12)).encode()
        var rng = SplitMix64(state: 4)
        let random = (0..<64).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        for bytes in [badFingerprint, indication, response, random, [0, 1, 0, 0], []] {
            guard case .drop = a.handleSTUN(bytes, from: Self.browser, now: now) else {
                Issue.record("answered \(bytes.prefix(8))")
                continue
            }
        }
    }

    @Test func controlledPeerGetsRoleConflict() throws {
        var (a, _, now) = Self.agent()
        let (r, s, _) = try response(a.handleSTUN(Self.check(controlled: true), from: Self.browser, now: now))
        #expect(try r.errorCode()?.code == 487 && s == nil)
        #expect(a.session(for: Self.browser) == nil)
    }

    @Test func unknownComprehensionRequiredAttributeIs420() throws {
        var (a, _, now) = Self.agent()
        let m = Message(type: .bindingRequest, transactionID: [UInt8](repeating: 5, count: 12))
            .adding(.username, Array("srvU:brwU".utf8)).adding(AttributeType(rawValue: 0x7777), [1, 2, 3, 4])
            .encode(integrityKey: Array(Self.local.password.utf8), fingerprint: true)
        let (r, _, _) = try response(a.handleSTUN(m, from: Self.browser, now: now))
        #expect(try r.errorCode()?.code == 420)
        #expect(r.attribute(.unknownAttributes) == [0x77, 0x77])
    }

    /// A peer that moves keeps its old selected address until a valid check from the new one nominates it; an
    /// invalid check from the new address changes nothing.
    @Test func followsAMoveOnlyAfterAValidCheck() throws {
        var (a, id, now) = Self.agent()
        _ = a.handleSTUN(Self.check(useCandidate: true), from: Self.browser, now: now)
        _ = a.handleSTUN(Self.check(password: "wrong-password-0123456789", useCandidate: true), from: Self.moved, now: now)
        #expect(a.sessions[id]?.selected == Self.browser && a.session(for: Self.moved) == nil)
        let (_, _, e1) = try response(a.handleSTUN(Self.check(), from: Self.moved, now: now))
        #expect(e1.isEmpty && a.sessions[id]?.selected == Self.browser, "validated, not nominated")
        #expect(a.session(for: Self.moved) == id)
        let (_, _, e2) = try response(a.handleSTUN(Self.check(useCandidate: true), from: Self.moved, now: now))
        #expect(e2 == [.selected(id, Self.moved, previous: Self.browser)])
        #expect(a.sessions[id]?.selected == Self.moved)
    }

    /// RFC 7675: checks renew consent; 30 s without one closes the session and frees its ufrag and addresses.
    /// An ICE restart: only the new credentials are valid afterwards, media keeps the selected pair until the
    /// peer nominates from its new address, and consent is renewed from the restart.
    @Test func aRestartTakesNewCredentialsAndKeepsMediaFlowing() throws {
        var (a, id, now) = Self.agent()
        _ = try response(a.handleSTUN(Self.check(useCandidate: true), from: Self.browser, now: now))
        let fresh = ICECredentials(ufrag: "newU", password: "newserverpassword0123456")
        let later = now + .seconds(25)
        let restarted = a.restart(id, local: fresh, remoteUfrag: "brw2", now: later)
        #expect(restarted)
        #expect(a.sessions[id]?.local == fresh && a.sessions[id]?.restarts == 1)
        #expect(a.session(for: Self.browser) == id && a.sessions[id]?.selected == Self.browser, "media keeps its path")
        // The old credentials, or the new ufrag with the peer's old one, are refused now.
        for old in [Self.check(), Self.check(username: "newU:brwU", password: fresh.password)] {
            let (r, s, _) = try response(a.handleSTUN(old, from: Self.browser, now: later))
            #expect(r.type == .bindingError && s == nil)
        }
        // Consent counts from the restart: 25 s after the last old check, the session is still there.
        #expect(a.expire(now: later + .seconds(10)).isEmpty)
        // The peer checks from its new address with the new credentials and nominates it.
        let (r, s, e) = try response(a.handleSTUN(Self.check(username: "newU:brw2", password: fresh.password, useCandidate: true),
                                                  from: Self.moved, now: later))
        #expect(r.type == .bindingSuccess && s == id && e == [.selected(id, Self.moved, previous: Self.browser)])
        #expect(r.messageIntegrityIsValid(key: Array(fresh.password.utf8)) == true)
        // Credentials another session holds are refused; an unknown session too.
        let other = a.addSession(local: ICECredentials(ufrag: "othr", password: "otherpassword0123456789x"), remoteUfrag: nil, now: later)!
        let taken = a.restart(id, local: ICECredentials(ufrag: "othr", password: "otherpassword0123456789x"), remoteUfrag: nil, now: later)
        let unknown = a.restart(Agent.SessionID(rawValue: 999), local: Self.local, remoteUfrag: nil, now: later)
        #expect(!taken && !unknown)
        a.removeSession(other)
        #expect(a.sessions[id]?.local == fresh)
    }

    @Test func consentExpiresThirtySecondsAfterTheLastCheck() throws {
        var (a, id, t) = Self.agent()
        _ = a.handleSTUN(Self.check(useCandidate: true), from: Self.browser, now: t)
        for s in stride(from: 5, through: 60, by: 5) {
            _ = a.handleSTUN(Self.check(), from: Self.browser, now: t + .seconds(s))
            #expect(a.expire(now: t + .seconds(s) + .milliseconds(500)).isEmpty)
        }
        #expect(a.expire(now: t + .seconds(60) + .seconds(29)).isEmpty)
        #expect(a.expire(now: t + .seconds(90)) == [.closedSession(id, .consentExpired)])
        #expect(a.sessions.isEmpty && a.session(for: Self.browser) == nil)
        guard case .reply(let bytes, nil, _) = a.handleSTUN(Self.check(), from: Self.browser, now: t + .seconds(91)) else {
            throw TestFailure("a check for the closed session was not answered with an error")
        }
        #expect(try Message(parsing: bytes).errorCode()?.code == 401)
    }

    @Test func sessionWithoutAnyCheckClosesAfterConnectTimeout() {
        var (a, id, t) = Self.agent { $0.connectTimeout = .seconds(10) }
        #expect(a.expire(now: t + .seconds(9)).isEmpty)
        // Invalid checks do not keep it alive.
        _ = a.handleSTUN(Self.check(password: "wrong-password-0123456789"), from: Self.browser, now: t + .seconds(9))
        #expect(a.expire(now: t + .seconds(10)) == [.closedSession(id, .neverConnected)])
    }

    @Test func addressesPerSessionAreBoundedKeepingTheSelectedOne() throws {
        var (a, id, now) = Self.agent { $0.addressesPerSession = 3 }
        _ = a.handleSTUN(Self.check(useCandidate: true), from: Self.browser, now: now)
        let others = (1...5).map { PeerAddress(transport: .udp, ipv4: 0x0A00_0001, port: UInt16(40000 + $0)) }
        for o in others { _ = a.handleSTUN(Self.check(), from: o, now: now) }
        let validated = try #require(a.sessions[id]?.validated)
        #expect(validated.count == 3 && validated.contains(Self.browser))
        #expect(validated.contains(others[4]) && a.session(for: others[0]) == nil)
    }

    @Test func ufragsAreUniqueAndSessionsIndependent() throws {
        var (a, id, now) = Self.agent()
        let duplicate = a.addSession(local: Self.local, remoteUfrag: nil, now: now)
        #expect(duplicate == nil)
        let other = ICECredentials(ufrag: "twoU", password: "anotherpassword012345678")
        let added = a.addSession(local: other, remoteUfrag: nil, now: now)
        let id2 = try #require(added)
        _ = a.handleSTUN(Self.check(useCandidate: true), from: Self.browser, now: now)
        _ = a.handleSTUN(Self.check(username: "twoU:x", password: other.password, useCandidate: true), from: Self.moved, now: now)
        #expect(a.session(for: Self.browser) == id && a.session(for: Self.moved) == id2)
        a.removeSession(id)
        #expect(a.session(for: Self.browser) == nil && a.session(for: Self.moved) == id2)
    }

    /// TCP and UDP from the same IP and port are different remote candidates.
    @Test func transportIsPartOfTheAddress() {
        var (a, id, now) = Self.agent()
        let tcp = PeerAddress(transport: .tcp, ipv4: 0xC000_0201, port: 50000)
        _ = a.handleSTUN(Self.check(), from: tcp, now: now)
        #expect(a.session(for: tcp) == id && a.session(for: Self.browser) == nil)
        a.forget(tcp)
        #expect(a.session(for: tcp) == nil && a.sessions[id]?.validated == [])
    }

    @Test func credentials() {
        let c = ICECredentials.random()
        #expect(ICECredentials.isValid(ufrag: c.ufrag) && ICECredentials.isValid(password: c.password))
        #expect(c != ICECredentials.random())
        #expect(!ICECredentials.isValid(ufrag: "ab:c") && !ICECredentials.isValid(password: "short"))
    }

    @Test func peerAddressFromSocketAddresses() throws {
        let v4 = try PeerAddress(.init(ipAddress: "192.0.2.1", port: 50000), transport: .udp)
        #expect(v4 == Self.browser && v4?.stunAddress == Address(ip: [192, 0, 2, 1], port: 50000))
        let v6 = try #require(try PeerAddress(.init(ipAddress: "2001:db8::1", port: 443), transport: .tcp))
        #expect(v6.stunAddress == Address(ip: [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1], port: 443))
        let mapped = try PeerAddress(.init(ipAddress: "::ffff:192.0.2.1", port: 50000), transport: .udp)
        #expect(mapped == Self.browser, "a v4 client of a dual-stack socket is the same peer")
    }
}
