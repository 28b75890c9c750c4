import STUN

/// The server side of ICE for the media port, as an ICE-lite agent (RFC 8445 section 2.5): it gathers only
/// host candidates, never sends checks, and is always controlled. It answers the peer's connectivity checks,
/// takes the pair the peer nominates, and closes sessions whose peer stops checking.
///
/// A pure state machine: bytes and the current time in, replies and events out; no sockets and no clock of its
/// own, so tests drive it through any sequence of packets and instants.
///
/// Rules, with their sources:
/// - A check must carry USERNAME "LOCAL:REMOTE" and MESSAGE-INTEGRITY (or -SHA256) keyed with the session's
///   local password (RFC 8445 7.3, RFC 8489 9.1.3). Missing either: 400. Unknown local ufrag, wrong remote
///   ufrag or a bad MAC: 401. None of these create or change any state.
/// - A request whose FINGERPRINT does not check, and anything that is not a request, is dropped unanswered.
/// - ICE-CONTROLLED in a check means the peer also thinks it is controlled; a lite agent cannot take the
///   controlling role, so it answers 487 and the peer switches (RFC 8445 7.3.1.1).
/// - A valid check validates its source address for the session: media from validated addresses reaches the
///   session, media from anywhere else is dropped. USE-CANDIDATE in a valid check selects that address; this
///   is the only way the selected address changes, so a peer that moves is followed only after a valid check
///   from its new address (RFC 8445 7.3.1.5).
/// - Consent freshness (RFC 7675): each valid check renews consent; a session without one for
///   ``Configuration/consentTimeout`` is closed, as is one that never got a valid check within
///   ``Configuration/connectTimeout``.
public struct ICELiteAgent: Sendable {
    public typealias Instant = ContinuousClock.Instant

    public struct Configuration: Sendable, Equatable {
        /// RFC 7675 section 5.1: 30 s.
        public var consentTimeout: Duration = .seconds(30)
        /// How long a new session waits for its first valid check.
        public var connectTimeout: Duration = .seconds(30)
        /// Remote addresses one session may validate (a browser checks a pair per local candidate); the oldest
        /// one that is not selected makes room for a new one.
        public var addressesPerSession = 8
        public var software = "LiveSwarm"
        public init() {}
    }

    public struct SessionID: Hashable, Sendable, Comparable, CustomStringConvertible {
        public var rawValue: UInt64
        public init(rawValue: UInt64) { self.rawValue = rawValue }
        public static func < (a: SessionID, b: SessionID) -> Bool { a.rawValue < b.rawValue }
        public var description: String { String(rawValue) }
    }

    public enum State: String, Sendable, Equatable {
        /// No nominated pair yet.
        case checking
        /// The peer nominated a pair: media goes to ``Session/selected``.
        case connected
    }

    public struct Session: Sendable, Equatable {
        public let id: SessionID
        public internal(set) var local: ICECredentials
        /// The peer's ufrag from its SDP; when known, checks must carry it after the colon.
        public internal(set) var remoteUfrag: String?
        public internal(set) var state: State = .checking
        public internal(set) var selected: PeerAddress?
        /// Validated remote addresses, oldest first.
        public internal(set) var validated: [PeerAddress] = []
        public let created: Instant
        /// The last valid check (nil: none yet).
        public internal(set) var lastCheck: Instant?
        public internal(set) var checks: Int = 0
        /// ICE restarts this session went through.
        public internal(set) var restarts: Int = 0
    }

    public enum CloseReason: String, Sendable, Equatable {
        /// RFC 7675: no valid check for the consent timeout.
        case consentExpired = "consent expired"
        /// No valid check ever arrived.
        case neverConnected = "no connectivity check arrived"
        /// Closed by its owner.
        case closed
    }

    public enum Event: Sendable, Equatable {
        /// The peer nominated `address` (first time, or a move): media now goes there.
        case selected(SessionID, PeerAddress, previous: PeerAddress?)
        case closedSession(SessionID, CloseReason)
    }

    /// What to do with one STUN packet.
    public enum Outcome: Sendable, Equatable {
        /// Send `bytes` back to the packet's source. `session` is set for a valid check.
        case reply([UInt8], session: SessionID?, events: [Event])
        /// Not answered, and why (for counters and debug logs).
        case drop(String)
    }

    public let configuration: Configuration
    public private(set) var sessions: [SessionID: Session] = [:]
    var byUfrag: [String: SessionID] = [:]
    var byAddress: [PeerAddress: SessionID] = [:]
    var nextID: UInt64 = 1

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    // MARK: - Sessions

    /// Starts a session for an offer/answer exchange. Fails (nil) when another live session already uses the
    /// local ufrag.
    public mutating func addSession(local: ICECredentials, remoteUfrag: String?, now: Instant) -> SessionID? {
        guard byUfrag[local.ufrag] == nil else { return nil }
        let id = SessionID(rawValue: nextID)
        nextID += 1
        sessions[id] = Session(id: id, local: local, remoteUfrag: remoteUfrag, created: now)
        byUfrag[local.ufrag] = id
        return id
    }

    /// An ICE restart (RFC 8445 section 9): the session takes new local credentials and the peer's new ufrag, and
    /// from now on only checks made with them are valid. What the session carries above ICE (DTLS, SRTP) is not
    /// touched. Its validated and selected addresses stay, so media keeps flowing on the old pair until the peer
    /// nominates a new one (a restart after a WebSocket drop, with the network unchanged, never stops media).
    /// Consent is renewed, so the new checks have a full timeout to arrive. Fails (false) for an unknown session
    /// or local credentials another session uses.
    public mutating func restart(_ id: SessionID, local: ICECredentials, remoteUfrag: String?, now: Instant) -> Bool {
        guard var session = sessions[id], byUfrag[local.ufrag] == nil else { return false }
        byUfrag[session.local.ufrag] = nil
        byUfrag[local.ufrag] = id
        session.local = local
        session.remoteUfrag = remoteUfrag
        session.restarts += 1
        if session.lastCheck != nil { session.lastCheck = now }
        sessions[id] = session
        return true
    }

    @discardableResult
    public mutating func removeSession(_ id: SessionID) -> Session? {
        guard let s = sessions.removeValue(forKey: id) else { return nil }
        byUfrag[s.local.ufrag] = nil
        for a in s.validated where byAddress[a] == id { byAddress[a] = nil }
        return s
    }

    /// The session a validated address belongs to: the media fast path (no allocation).
    public func session(for address: PeerAddress) -> SessionID? { byAddress[address] }

    /// A remote address went away (its TCP connection closed): it is no longer validated, nor selected.
    public mutating func forget(_ address: PeerAddress) {
        guard let id = byAddress.removeValue(forKey: address) else { return }
        sessions[id]?.validated.removeAll { $0 == address }
        if sessions[id]?.selected == address { sessions[id]?.selected = nil }
    }

    /// Closes the sessions whose consent expired (or that never connected) by `now`.
    public mutating func expire(now: Instant) -> [Event] {
        var events: [Event] = []
        for (id, s) in sessions {
            if let last = s.lastCheck {
                if now - last >= configuration.consentTimeout { events.append(.closedSession(id, .consentExpired)) }
            } else if now - s.created >= configuration.connectTimeout {
                events.append(.closedSession(id, .neverConnected))
            }
        }
        for case .closedSession(let id, _) in events { removeSession(id) }
        return events.sorted { a, b in
            if case .closedSession(let x, _) = a, case .closedSession(let y, _) = b { return x < y }
            return false
        }
    }

    // MARK: - Checks

    /// Handles one STUN packet from `source` (already known to start like STUN: RFC 7983 first byte 0-3).
    public mutating func handleSTUN(_ bytes: [UInt8], from source: PeerAddress, now: Instant) -> Outcome {
        let request: Message
        switch BindingScreening(bytes) {
        case .drop(let why): return .drop(why)
        case .reject(let r, let code, let unknown): return error(r, code, unknown: unknown)
        case .request(let r): request = r
        }
        guard let username = request.username,
              request.hasMessageIntegrity || request.hasMessageIntegritySHA256 else {
            return error(request, .badRequest)
        }
        let parts = username.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard let id = byUfrag[String(parts[0])], var session = sessions[id] else {
            return error(request, .unauthenticated)
        }
        if let remote = session.remoteUfrag, parts.count < 2 || parts[1] != remote {
            return error(request, .unauthenticated)
        }
        let key = Array(session.local.password.utf8)
        guard request.isAuthentic(key: key) else { return error(request, .unauthenticated) }
        if request.iceControlled != nil { return error(request, .roleConflict, key: key) }

        // A valid check: validate the address, renew consent, follow a nomination.
        var events: [Event] = []
        session.lastCheck = now
        session.checks += 1
        if !session.validated.contains(source) {
            if let owner = byAddress[source], owner != id {
                // The address moved to another session (a new session from the same socket): it leaves the old one.
                sessions[owner]?.validated.removeAll { $0 == source }
                if sessions[owner]?.selected == source { sessions[owner]?.selected = nil }
            }
            if session.validated.count >= configuration.addressesPerSession,
               let oldest = session.validated.firstIndex(where: { $0 != session.selected }) {
                byAddress[session.validated.remove(at: oldest)] = nil
            }
            session.validated.append(source)
            byAddress[source] = id
        }
        if request.useCandidate && session.selected != source {
            events.append(.selected(id, source, previous: session.selected))
            session.selected = source
            session.state = .connected
        }
        sessions[id] = session
        let response = request.bindingSuccess(mapped: source.stunAddress)
            .adding(.software, Array(configuration.software.utf8))
            .encode(integrityKey: key, fingerprint: true)
        return .reply(response, session: id, events: events)
    }

    /// An error response: without MESSAGE-INTEGRITY unless the request authenticated (RFC 8489 6.3.4), with
    /// a FINGERPRINT as ICE expects.
    func error(_ request: Message, _ code: ErrorCode, unknown: [AttributeType] = [], key: [UInt8]? = nil) -> Outcome {
        let response = request.errorResponse(code, unknown: unknown).adding(.software, Array(configuration.software.utf8))
        return .reply(response.encode(integrityKey: key, fingerprint: true), session: nil, events: [])
    }
}
