import NIOConcurrencyHelpers
import STUN

/// A relay socket an allocation owns (RFC 8656 section 2.2): the I/O layer binds it, this type decides what goes
/// through it.
public protocol RelaySocket: AnyObject, Sendable {
    /// The relayed transport address as clients see it (the external IP when the server is behind a NAT).
    var address: Address { get }
    func send(_ data: ArraySlice<UInt8>, to peer: Address)
    /// A datagram from another relay of this server, handed over without the network (which may not hairpin), as
    /// if it had arrived on this socket from `peer`.
    func deliver(_ data: ArraySlice<UInt8>, from peer: Address)
    func close()
}

/// How a client reached the TURN listener.
public enum TURNTransport: String, Sendable, Hashable, CustomStringConvertible {
    case udp, tcp, tls
    public var description: String { rawValue }
}

/// A client's 5-tuple as far as the server can tell it apart (RFC 8656 2.2): transport and source address.
public struct TURNClient: Hashable, Sendable, CustomStringConvertible {
    public var transport: TURNTransport
    public var address: Address
    public init(transport: TURNTransport, address: Address) { (self.transport, self.address) = (transport, address) }
    public var description: String { "\(transport) \(address)" }
}

/// The TURN server's decisions (RFC 8656), without sockets: requests from clients (Allocate, Refresh,
/// CreatePermission, ChannelBind), Send indications and ChannelData to peers, and data from peers back to
/// clients as ChannelData or Data indications. Time is passed in (seconds on one monotonic clock; `wall` is Unix
/// time, for REST credentials' expiry). Thread-safe: one lock around the table.
public final class Allocations: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var credentials = TURNCredentials()
        public var policy = PeerPolicy()
        public var limits = TURNLimits()
        /// Relay families this server has (an IPv6 relay needs an IPv6 relay address).
        public var families: Set<Int> = [4]
        /// Behind a NAT (`--turn-external-ip`): the external address to the local one, for packets to the server's
        /// own media port at its external address (many cloud NATs do not hairpin).
        public var hairpin: [[UInt8]: [UInt8]] = [:]
        public var software = "LiveSwarm"
        public init() {}
    }

    /// A request that needs a relay socket bound before it can be answered.
    public struct PendingAllocation: Sendable {
        public let client: TURNClient
        public let family: Int
        /// EVEN-PORT: nil, or an even port, and when true, the next one bound and held for a RESERVATION-TOKEN.
        public let evenPort: Bool?
        let request: Message
        let credential: TURNCredentials.Candidate
        let username: String
        let lifetime: Double
        /// Whom it counts against (a static user, or the USER of a REST username).
        public var user: String { credential.user }
    }

    public enum RequestOutcome {
        case reply([UInt8])
        case drop(String)
        /// Bind a relay (and a reserved one for EVEN-PORT with R), then call ``allocated(_:relay:reserved:now:)``.
        case allocate(PendingAllocation)
    }

    struct Channel {
        var peer: Address
        var expiry: Double
    }

    /// One allocation (RFC 8656 2.2).
    final class Allocation {
        let client: TURNClient
        let relay: any RelaySocket
        let username: String
        let credential: TURNCredentials.Candidate
        var expiry: Double
        /// Canonical peer IP to expiry.
        var permissions: [[UInt8]: Double] = [:]
        var channels: [UInt16: Channel] = [:]
        var channelOfPeer: [Address: UInt16] = [:]
        /// The Allocate's transaction and answer, for a retransmitted request (RFC 8656 7.2).
        let transactionID: [UInt8]
        let response: [UInt8]
        var toPeers = (packets: 0, bytes: 0)
        var fromPeers = (packets: 0, bytes: 0)
        /// Each direction's bandwidth budget.
        var toPeersBudget: ByteBudget
        var fromPeersBudget: ByteBudget

        init(client: TURNClient, relay: any RelaySocket, username: String, credential: TURNCredentials.Candidate, expiry: Double,
             transactionID: [UInt8], response: [UInt8]) {
            (self.client, self.relay, self.username, self.credential, self.expiry) = (client, relay, username, credential, expiry)
            (self.transactionID, self.response) = (transactionID, response)
            (toPeersBudget, fromPeersBudget) = (ByteBudget(), ByteBudget())
        }

        func permits(_ ip: [UInt8], now: Double) -> Bool {
            guard let canonical = PeerPolicy.canonical(ip), let until = permissions[canonical] else { return false }
            return until > now
        }
    }

    /// Counters for metrics and the API.
    public struct Counters: Sendable, Equatable, Codable {
        public var allocated = 0
        public var authFailures = 0
        /// 401 and 438 answers not sent: over a source's ``ChallengeLimiter`` bucket.
        public var challengesDropped = 0
        public var deniedPeers = 0
        /// Send and ChannelData without a permission, channel or allowed port; data from peers without permission.
        public var dropped = 0
        /// Refresh requests answered with success (a lifetime above 0).
        public var refreshes = 0
        public var relayedPackets = 0
        public var relayedBytes = 0
        /// Allocate answered 486 (a user's or a source address's quota) or 508 (the server's capacity).
        public var quotaRefusals = 0
        /// Packets dropped because their allocation was over its bandwidth (``TURNLimits/bytesPerSecond``).
        public var overBandwidth = 0
    }

    /// Changed only by ``setMediaPorts(_:)`` (under the lock: the policy is read under it).
    public private(set) var configuration: Configuration
    let nonces: NonceIssuer
    let lock = NIOLock()
    var table: [TURNClient: Allocation] = [:]
    /// Relayed address to allocation, for data from peers and for relaying between allocations.
    var byRelay: [Address: Allocation] = [:]
    var reservations: [[UInt8]: (socket: any RelaySocket, expiry: Double)] = [:]
    var counters = Counters()
    var challenges: ChallengeLimiter
    /// Set by ``closeAll()``: the server is stopping.
    var stopped = false

    public init(configuration: Configuration, nonces: NonceIssuer = NonceIssuer(), challenges: ChallengeLimiter = ChallengeLimiter()) {
        self.configuration = configuration
        self.nonces = nonces
        self.challenges = challenges
    }

    public var snapshot: Counters { lock.withLock { counters } }

    /// The SFU's media ports, known once its socket is bound: reachable on the server's own addresses.
    public func setMediaPorts(_ ports: Set<UInt16>) { lock.withLock { configuration.policy.mediaPorts = ports } }

    /// Whether `client` has a channel `number` bound (over TCP, ChannelData on any other is garbage).
    public func hasChannel(_ number: UInt16, for client: TURNClient) -> Bool {
        lock.withLock { table[client]?.channels[number] != nil }
    }

    /// A TCP or TLS client's connection closed: its allocation goes (RFC 8656 3.1).
    public func closed(_ client: TURNClient) {
        let relay = lock.withLock { table[client].map(detach) }
        relay?.close()
    }
    public var count: Int { lock.withLock { table.count } }

    /// Whether `client` holds an allocation.
    public func has(_ client: TURNClient) -> Bool { lock.withLock { table[client] != nil } }

    // MARK: - Requests

    /// A STUN request other than Binding, from `client`.
    public func request(_ m: Message, from client: TURNClient, now: Double, wall: Double) -> RequestOutcome {
        let respond = Responder(request: m, software: configuration.software)
        let unknown = m.unknownComprehensionRequired
        if !unknown.isEmpty { return .reply(respond.error(.unknownAttribute, unknown: unknown)) }
        switch m.type.method {
        case .allocate, .refresh, .createPermission, .channelBind: break
        default: return .reply(respond.error(.badRequest))
        }
        // Long-term credentials (RFC 8489 9.2.4): a request without integrity is challenged with REALM and NONCE.
        let realm = configuration.credentials.realm
        func challenge(_ code: ErrorCode) -> RequestOutcome {
            let allowed = lock.withLock { () -> Bool in
                if code == .unauthenticated && m.hasMessageIntegrity { counters.authFailures += 1 }
                guard challenges.allow(client.address.ip, now: now) else {
                    counters.challengesDropped += 1
                    return false
                }
                return true
            }
            guard allowed else { return .drop("challenge rate limit for \(IPAddressText.format(client.address.ip))") }
            return .reply(respond.challenge(code, realm: realm, nonce: nonces.make(for: client.address.ip, now: now)))
        }
        guard m.hasMessageIntegrity || m.hasMessageIntegritySHA256 else { return challenge(.unauthenticated) }
        guard let username = m.username, let nonce = m.nonce, m.realm != nil else { return .reply(respond.error(.badRequest)) }
        guard nonces.isFresh(nonce, for: client.address.ip, now: now) else { return challenge(.staleNonce) }
        guard m.realm == realm, let credential = configuration.credentials.candidates(for: username).first(where: { m.isAuthentic(key: $0.key) }) else {
            return challenge(.unauthenticated)
        }
        let key = credential.key
        // REST credentials past their expiry are refused on Allocate and Refresh alike (eturnal's default checks
        // only at Allocate, so a session could be refreshed forever).
        if let expiry = credential.expiry, expiry < wall, m.type.method == .allocate || m.type.method == .refresh {
            return challenge(.unauthenticated)
        }

        if m.type.method == .allocate {
            return allocate(m, client: client, username: username, credential: credential, respond: respond, now: now)
        }
        return lock.withLock { () -> RequestOutcome in
            // One past its lifetime is gone even before the sweep reaches it: no request revives it.
            guard let a = table[client], a.expiry > now else { return .reply(respond.error(.allocationMismatch, key: key)) }
            guard a.username == username else { return .reply(respond.error(.wrongCredentials, key: key)) }
            switch m.type.method {
            case .refresh: return .reply(refresh(a, m, respond: respond, now: now))
            case .createPermission: return .reply(createPermission(a, m, respond: respond, now: now))
            default: return .reply(channelBind(a, m, respond: respond, now: now))
            }
        }
    }

    func allocate(_ m: Message, client: TURNClient, username: String, credential: TURNCredentials.Candidate,
                  respond: Responder, now: Double) -> RequestOutcome {
        let key = credential.key
        return lock.withLock { () -> RequestOutcome in
            if let existing = table[client] {
                // A retransmission gets the same answer; anything else is a mismatch (RFC 8656 7.2).
                return .reply(existing.transactionID == m.transactionID ? existing.response : respond.error(.allocationMismatch, key: key))
            }
            let transport: UInt8?, even: Bool?, token: [UInt8]?, family: Int?, lifetime: UInt32?
            do {
                (transport, even, token, family, lifetime) = (try m.requestedTransport(), try m.evenPort(), try m.reservationToken(),
                                                              try m.requestedAddressFamily(), try m.lifetime())
            } catch {
                return .reply(respond.error(.badRequest, key: key))
            }
            guard let transport else { return .reply(respond.error(.badRequest, key: key)) }
            guard transport == 17 else { return .reply(respond.error(.unsupportedTransportProtocol, key: key)) }
            if token != nil && (even != nil || family != nil) { return .reply(respond.error(.badRequest, key: key)) }
            let wanted = family ?? 4
            guard configuration.families.contains(wanted) else { return .reply(respond.error(.addressFamilyNotSupported, key: key)) }
            // Stopping: no new relay is bound (one would outlive the sweep that closes the others).
            guard !stopped else { return .reply(respond.error(.insufficientCapacity, key: key)) }
            if let code = quotaRefusal(client, credential) { return .reply(respond.error(code, key: key)) }
            let seconds = lifetime.map { min(max(Double($0), configuration.limits.defaultLifetime), configuration.limits.maximumLifetime) }
                ?? configuration.limits.defaultLifetime
            let pending = PendingAllocation(client: client, family: wanted, evenPort: even, request: m, credential: credential,
                                            username: username, lifetime: seconds)
            if let token {
                // The port reserved by an earlier EVEN-PORT Allocate: no socket to bind. One past its expiry that the
                // sweep has not reached is released here, as the sweep would (closing under the lock only schedules
                // it on its event loop).
                guard let reserved = reservations.removeValue(forKey: token) else {
                    return .reply(respond.error(.insufficientCapacity, key: key))
                }
                guard reserved.expiry > now else {
                    reserved.socket.close()
                    return .reply(respond.error(.insufficientCapacity, key: key))
                }
                return .reply(install(pending, relay: reserved.socket, reserved: nil, now: now))
            }
            return .allocate(pending)
        }
    }

    /// The relay for `pending` is bound (nil: no port was free, 508). `reserved`, for EVEN-PORT with R, is the
    /// next port, held for the RESERVATION-TOKEN in the answer.
    public func allocated(_ pending: PendingAllocation, relay: (any RelaySocket)?, reserved: (any RelaySocket)?, now: Double) -> [UInt8] {
        lock.withLock {
            let respond = Responder(request: pending.request, software: configuration.software)
            let key = pending.credential.key
            // Not installed: the sockets bound for it are closed (under the lock this only schedules it on their loop).
            func refused(_ answer: [UInt8]) -> [UInt8] {
                relay?.close()
                reserved?.close()
                return answer
            }
            guard let relay else { return refused(respond.error(.insufficientCapacity, key: key)) }
            // The server began to stop while this relay was being bound: closed, not installed (an allocation added
            // after `closeAll` kept its socket, and through the socket's handler the endpoint, alive for good).
            if stopped { return refused(respond.error(.insufficientCapacity, key: key)) }
            // The client may have allocated meanwhile (a retransmission answered by another bind): keep the first.
            if let existing = table[pending.client] {
                return refused(existing.transactionID == pending.request.transactionID ? existing.response
                               : respond.error(.allocationMismatch, key: key))
            }
            if let code = quotaRefusal(pending.client, pending.credential) { return refused(respond.error(code, key: key)) }
            return install(pending, relay: relay, reserved: reserved, now: now)
        }
    }

    /// Under the lock: 508 at the server's capacity, 486 at the user's or the source address's quota (counted).
    /// Checked when the Allocate arrives and again when its relay is bound: Allocates whose binds overlap all passed
    /// the first check with none of them installed.
    func quotaRefusal(_ client: TURNClient, _ credential: TURNCredentials.Candidate) -> ErrorCode? {
        guard table.count < configuration.limits.capacity else {
            counters.quotaRefusals += 1
            return .insufficientCapacity
        }
        let (mine, sameSource) = table.values.reduce((0, 0)) {
            ($0.0 + ($1.credential.user == credential.user ? 1 : 0), $0.1 + ($1.client.address.ip == client.address.ip ? 1 : 0))
        }
        guard mine < configuration.limits.allocationsPerUser, sameSource < configuration.limits.allocationsPerSource else {
            counters.quotaRefusals += 1
            return .allocationQuotaReached
        }
        return nil
    }

    /// Under the lock.
    func install(_ p: PendingAllocation, relay: any RelaySocket, reserved: (any RelaySocket)?, now: Double) -> [UInt8] {
        var response = Message(type: MessageType(method: .allocate, messageClass: .successResponse), transactionID: p.request.transactionID)
            .adding(.xorRelayedAddress, address: relay.address)
            .adding(.lifetime, Self.uint32(UInt32(p.lifetime)))
            .adding(.xorMappedAddress, address: p.client.address)
        if let reserved {
            let token = (0..<8).map { _ in UInt8.random(in: 0...255) }
            reservations[token] = (reserved, now + configuration.limits.reservationLifetime)
            response = response.adding(.reservationToken, token)
        }
        let bytes = Responder(request: p.request, software: configuration.software).encode(response, key: p.credential.key)
        let a = Allocation(client: p.client, relay: relay, username: p.username, credential: p.credential, expiry: now + p.lifetime,
                           transactionID: p.request.transactionID, response: bytes)
        table[p.client] = a
        byRelay[relay.address] = a
        counters.allocated += 1
        return bytes
    }

    /// Under the lock.
    func refresh(_ a: Allocation, _ m: Message, respond: Responder, now: Double) -> [UInt8] {
        guard let asked = try? m.lifetime() ?? UInt32(configuration.limits.defaultLifetime) else { return respond.error(.badRequest, key: a.credential.key) }
        let seconds = asked == 0 ? 0 : min(max(Double(asked), configuration.limits.defaultLifetime), configuration.limits.maximumLifetime)
        if seconds == 0 {
            // Closing a socket under the lock only schedules it on its event loop.
            detach(a).close()
        } else {
            a.expiry = now + seconds
            counters.refreshes += 1
        }
        let ok = Message(type: MessageType(method: .refresh, messageClass: .successResponse), transactionID: m.transactionID)
            .adding(.lifetime, Self.uint32(UInt32(seconds)))
        return respond.encode(ok, key: a.credential.key)
    }

    /// A peer's IP checked for a permission: the policy, the credentials' scope, and the allocation's family.
    /// Nil when allowed, else the error.
    func refusal(_ a: Allocation, _ peer: Address) -> ErrorCode? {
        let verdict = configuration.policy.check(ip: peer.ip)
        if case .deny = verdict { return .forbidden }
        if a.credential.scope == .sfuOnly, verdict != .own { return .forbidden }
        let family = (PeerPolicy.canonical(peer.ip) ?? peer.ip).count == 4 ? 4 : 6
        if a.relay.address.isIPv6 {
            // IPv4 written inside IPv6 on an IPv6 relay: an IPv6 socket would reach it as IPv4 (the classic
            // filter bypass), and it is no IPv6 peer: refused as a peer, not as a family.
            if family == 4 { return peer.ip.count == 16 ? .forbidden : .peerAddressFamilyMismatch }
        } else if family != 4 {
            return .peerAddressFamilyMismatch
        }
        return nil
    }

    /// Under the lock.
    func createPermission(_ a: Allocation, _ m: Message, respond: Responder, now: Double) -> [UInt8] {
        guard let peers = try? m.xorPeerAddresses(), !peers.isEmpty else { return respond.error(.badRequest, key: a.credential.key) }
        // All or nothing (RFC 8656 9.2).
        for peer in peers {
            if let code = refusal(a, peer) {
                if code == .forbidden { counters.deniedPeers += 1 }
                return respond.error(code, key: a.credential.key)
            }
        }
        for peer in peers { a.permissions[PeerPolicy.canonical(peer.ip)!] = now + configuration.limits.permissionLifetime }
        return respond.encode(Message(type: MessageType(method: .createPermission, messageClass: .successResponse), transactionID: m.transactionID),
                              key: a.credential.key)
    }

    /// Under the lock.
    func channelBind(_ a: Allocation, _ m: Message, respond: Responder, now: Double) -> [UInt8] {
        guard let number = try? m.channelNumber(), ChannelData.channels.contains(number),
            let peers = try? m.xorPeerAddresses(), peers.count == 1
        else { return respond.error(.badRequest, key: a.credential.key) }
        let peer = Address(ip: PeerPolicy.canonical(peers[0].ip) ?? peers[0].ip, port: peers[0].port)
        if let code = refusal(a, peers[0]) {
            if code == .forbidden { counters.deniedPeers += 1 }
            return respond.error(code, key: a.credential.key)
        }
        // A channel is bound to one peer and a peer to one channel (RFC 8656 11.2).
        if let bound = a.channels[number], bound.peer != peer { return respond.error(.badRequest, key: a.credential.key) }
        if let other = a.channelOfPeer[peer], other != number { return respond.error(.badRequest, key: a.credential.key) }
        a.channels[number] = Channel(peer: peer, expiry: now + configuration.limits.channelLifetime)
        a.channelOfPeer[peer] = number
        a.permissions[peer.ip] = now + configuration.limits.permissionLifetime
        return respond.encode(Message(type: MessageType(method: .channelBind, messageClass: .successResponse), transactionID: m.transactionID),
                              key: a.credential.key)
    }

    /// Under the lock: `a` leaves the tables. Its relay is returned, to be closed outside the lock.
    func detach(_ a: Allocation) -> any RelaySocket {
        table[a.client] = nil
        byRelay[a.relay.address] = nil
        return a.relay
    }

    // MARK: - Data

    /// A Send indication (RFC 8656 10.2): to the peer, if permitted. Nothing is answered either way.
    public func send(_ m: Message, from client: TURNClient, now: Double) {
        guard let peer = (try? m.xorPeerAddresses())?.first, let data = m.data else { return drop() }
        relay(from: client, to: peer, data[...], now: now)
    }

    /// ChannelData from a client (RFC 8656 12.5): to the channel's peer, if bound and permitted.
    public func channelData(_ bytes: [UInt8], from client: TURNClient, now: Double) {
        guard let (number, range) = ChannelData.parse(bytes) else { return drop() }
        let peer = lock.withLock { () -> Address? in
            guard let a = table[client], let c = a.channels[number], c.expiry > now else { return nil }
            return c.peer
        }
        guard let peer else { return drop() }
        relay(from: client, to: peer, bytes[range], now: now)
    }

    func drop() { lock.withLock { counters.dropped += 1 } }

    /// Under the lock: one relayed packet, on an allocation's direction and in all.
    func count(_ bytes: Int, on direction: inout (packets: Int, bytes: Int)) {
        direction.packets += 1
        direction.bytes += bytes
        counters.relayedPackets += 1
        counters.relayedBytes += bytes
    }

    func relay(from client: TURNClient, to peer: Address, _ data: ArraySlice<UInt8>, now: Double) {
        let canonical = Address(ip: PeerPolicy.canonical(peer.ip) ?? peer.ip, port: peer.port)
        enum Route {
            case network(any RelaySocket, Address)
            /// To another allocation's relay on this server: handed over directly.
            case inside(from: Address, to: any RelaySocket)
        }
        let route = lock.withLock { () -> Route? in
            guard let a = table[client], a.expiry > now, a.permits(peer.ip, now: now) else {
                counters.dropped += 1
                return nil
            }
            let verdict = configuration.policy.check(peer: canonical) { byRelay[$0] != nil }
            // Session credentials (~sfu) reach the media port and nothing else: not even other relays of this server,
            // or two anonymous clients could relay to each other through it.
            let allowed = a.credential.scope == .sfuOnly
                ? verdict == .allow && configuration.policy.check(ip: canonical.ip) == .own && configuration.policy.mediaPorts.contains(canonical.port)
                : verdict == .allow
            guard allowed else {
                counters.dropped += 1
                counters.deniedPeers += 1
                return nil
            }
            guard a.toPeersBudget.take(data.count, now: now, rate: configuration.limits.bytesPerSecond) else {
                counters.overBandwidth += 1
                return nil
            }
            count(data.count, on: &a.toPeers)
            if let other = byRelay[canonical] { return .inside(from: a.relay.address, to: other.relay) }
            let target = configuration.hairpin[canonical.ip].map { Address(ip: $0, port: canonical.port) } ?? canonical
            return .network(a.relay, target)
        }
        switch route {
        case .network(let socket, let target): socket.send(data, to: target)
        case .inside(let source, let target): target.deliver(data, from: source)
        case nil: break
        }
    }

    /// Data from `peer` arrived on the relay at `relay`: what to send to which client (ChannelData when a channel
    /// is bound, else a Data indication), or nil when the peer has no permission.
    public func fromPeer(_ data: ArraySlice<UInt8>, relay: Address, peer: Address, now: Double) -> (TURNClient, [UInt8])? {
        lock.withLock { () -> (TURNClient, [UInt8])? in
            // The media port answering a client that reached it at the external address: shown as that address.
            var peer = peer
            if configuration.policy.mediaPorts.contains(peer.port), let local = PeerPolicy.canonical(peer.ip),
               let external = configuration.hairpin.first(where: { $0.value == local })?.key {
                peer = Address(ip: external, port: peer.port)
            }
            guard let a = byRelay[relay], a.expiry > now, a.permits(peer.ip, now: now) else {
                counters.dropped += 1
                return nil
            }
            guard a.fromPeersBudget.take(data.count, now: now, rate: configuration.limits.bytesPerSecond) else {
                counters.overBandwidth += 1
                return nil
            }
            count(data.count, on: &a.fromPeers)
            let canonical = Address(ip: PeerPolicy.canonical(peer.ip) ?? peer.ip, port: peer.port)
            if let number = a.channelOfPeer[canonical], let c = a.channels[number], c.expiry > now {
                return (a.client, ChannelData.encode(channel: number, data, pad: a.client.transport != .udp))
            }
            let indication = Message(type: MessageType(method: .data, messageClass: .indication), transactionID: Self.transactionID())
                .adding(.xorPeerAddress, address: peer)
                .adding(.data, Array(data))
            return (a.client, indication.encode())
        }
    }

    // MARK: - Time

    /// Expired allocations, permissions, channels and reservations go; their sockets are closed.
    public func expire(now: Double) {
        let closing = lock.withLock { () -> [any RelaySocket] in
            var out: [any RelaySocket] = []
            for a in table.values {
                if a.expiry <= now {
                    out.append(detach(a))
                    continue
                }
                a.permissions = a.permissions.filter { $0.value > now }
                for (n, c) in a.channels where c.expiry <= now {
                    a.channels[n] = nil
                    a.channelOfPeer[c.peer] = nil
                }
            }
            for (token, r) in reservations where r.expiry <= now {
                reservations[token] = nil
                out.append(r.socket)
            }
            return out
        }
        for s in closing { s.close() }
    }

    /// Every allocation goes (the server is stopping), and none is made afterwards: a relay whose bind completes
    /// later is closed by `allocated`.
    public func closeAll() {
        let all = lock.withLock { () -> [any RelaySocket] in
            stopped = true
            defer { (table, byRelay, reservations) = ([:], [:], [:]) }
            return table.values.map(\.relay) + reservations.values.map(\.socket)
        }
        for s in all { s.close() }
    }

    /// One allocation as the API shows it.
    public struct Summary: Sendable, Equatable {
        public var transport: TURNTransport
        public var client: String
        public var relay: String
        public var user: String
        public var permissions: Int
        public var channels: Int
        public var secondsLeft: Int
        public var toPeers: (packets: Int, bytes: Int)
        public var fromPeers: (packets: Int, bytes: Int)

        public static func == (l: Summary, r: Summary) -> Bool {
            l.client == r.client && l.relay == r.relay && l.user == r.user && l.toPeers == r.toPeers && l.fromPeers == r.fromPeers
        }
    }

    public func summaries(now: Double) -> [Summary] {
        lock.withLock {
            table.values.map {
                Summary(transport: $0.client.transport, client: "\($0.client.address)", relay: "\($0.relay.address)", user: $0.credential.user, permissions: $0.permissions.count,
                        channels: $0.channels.count, secondsLeft: max(0, Int($0.expiry - now)), toPeers: $0.toPeers, fromPeers: $0.fromPeers)
            }.sorted { $0.client < $1.client }
        }
    }

    static func uint32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

    static func transactionID() -> [UInt8] { (0..<12).map { _ in UInt8.random(in: 0...255) } }
}

/// A token bucket of bytes: `rate` a second, at most one second's worth saved up.
struct ByteBudget {
    var tokens: Double = .nan
    var at: Double = 0

    /// Whether `bytes` fit now; they are spent when they do.
    mutating func take(_ bytes: Int, now: Double, rate: Int) -> Bool {
        let capacity = Double(rate)
        tokens = tokens.isNaN ? capacity : min(capacity, tokens + max(0, now - at) * capacity)
        at = now
        guard tokens >= Double(bytes) else { return false }
        tokens -= Double(bytes)
        return true
    }
}

/// Builds the answers to one request: SOFTWARE on each, MESSAGE-INTEGRITY when the request authenticated, a
/// FINGERPRINT when the request had one.
struct Responder {
    let request: Message
    let software: String

    func encode(_ m: Message, key: [UInt8]?) -> [UInt8] {
        m.adding(.software, Array(software.utf8)).encode(integrityKey: key, fingerprint: request.hasFingerprint)
    }

    func error(_ code: ErrorCode, unknown: [AttributeType] = [], key: [UInt8]? = nil) -> [UInt8] {
        encode(request.errorResponse(code, unknown: unknown), key: key)
    }

    /// 401 or 438 with REALM and a fresh NONCE (RFC 8489 9.2.4).
    func challenge(_ code: ErrorCode, realm: String, nonce: String) -> [UInt8] {
        encode(request.errorResponse(code).adding(.realm, Array(realm.utf8)).adding(.nonce, Array(nonce.utf8)), key: nil)
    }
}
