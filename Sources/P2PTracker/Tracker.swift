import DequeModule

/// The WebTorrent-protocol tracker as a state machine: events in (a connection opened, a text message, a
/// connection closed, time passing), actions out (messages to send, connections to close). No sockets and no
/// clock: the WebSocket plumbing lives in the Server module, and time is passed in (seconds, any epoch).
///
/// What it keeps: each swarm's peers (one per stream, see ``InfoHash``), the offers it relayed and that wait for
/// an answer, and per connection its swarms and its message budget. A connection that closes is forgotten at
/// once: its peers leave their swarms, and answers to its offers find nobody.
public struct Tracker: Sendable {
    public typealias ConnectionID = Int

    /// The documented limits (docs/P2P.md). Defaults are sized for browser viewers of live streams.
    public struct Configuration: Sendable, Equatable {
        /// A text message's limit. A DataChannel-only offer is 0.5-1.5 KB of SDP with its candidates; ten fit with
        /// room to spare.
        public var maxMessageBytes = 65_536
        /// Offers relayed per announce (the protocol's `numwant`, capped): a viewer needs a handful of neighbours.
        public var maxOffersPerAnnounce = 10
        /// Seconds between announces that the tracker asks for (`interval`). Live swarms change fast; p2p
        /// players re-announce sooner when they lack neighbours, within the rate below.
        public var announceInterval = 20
        /// Peers per swarm; an announce beyond it is refused and the viewer plays from the origin alone.
        public var maxPeersPerSwarm = 50_000
        /// Swarms one connection may be in (one per stream it plays; a page rarely plays more than one).
        public var maxSwarmsPerConnection = 4
        /// An offer relayed and not answered within this many seconds is forgotten (ICE gathering takes well
        /// under a second on a LAN, a few seconds with STUN).
        public var offerTimeout: Double = 30
        /// Offers waiting for one peer's answer; a peer with this many gets no more until it answers.
        public var maxPendingOffersPerPeer = 20
        /// Messages per connection: a bucket of `messageBurst` refilled at `messagesPerSecond`.
        public var messageBurst: Double = 50
        public var messagesPerSecond: Double = 10
        /// Refused messages within `refusalWindow` seconds after which the connection is closed. (Counted in a
        /// window, not in a row: a flood gets a message through each time the bucket refills.)
        public var maxRefusals = 50
        public var refusalWindow: Double = 10

        public init() {}
    }

    public enum Action: Equatable, Sendable {
        case send(ConnectionID, TrackerResponse)
        /// Close with a WebSocket close reason (the plumbing picks the close code: 1008 policy, 1009 too big).
        case close(ConnectionID, TrackerError)
    }

    /// Counters for the API and the benchmark.
    public struct Statistics: Sendable, Equatable, Codable {
        public var connections = 0
        public var swarms = 0
        public var peers = 0
        public var pendingOffers = 0
        public var announces = 0
        public var offersRelayed = 0
        public var answersRelayed = 0
        public var refused = 0
        public var closed = 0
    }

    struct Connection: Sendable {
        var swarms: [InfoHash: PeerID] = [:]
        var tokens: Double
        var refilledAt: Double
        var refusals = 0
        var refusalWindowStart = 0.0
    }

    struct PendingKey: Hashable, Sendable {
        var infoHash: InfoHash
        var to: PeerID
        var offerID: String
    }

    struct Pending: Sendable {
        var from: PeerID
        var fromConnection: ConnectionID
        var toConnection: ConnectionID
        var expires: Double
    }

    public let configuration: Configuration
    /// The stream a LiveSwarm info hash stands for, or nil when it names no live stream.
    let namespace: @Sendable (InfoHash) -> String?
    var connections: [ConnectionID: Connection] = [:]
    var swarms: [InfoHash: Swarm] = [:]
    var pending: [PendingKey: Pending] = [:]
    var expiries: Deque<(expires: Double, key: PendingKey)> = []
    var rng: Xoshiro
    public private(set) var statistics = Statistics()
    /// Streams whose P2P the operator switched off (``setP2P(_:stream:)``).
    public private(set) var p2pOff: Set<String> = []
    /// The swarms of switched-off streams, by info hash: their peers announce every few seconds to learn when P2P is
    /// back, and `namespace` (which hashes every live stream's name) is not asked each time.
    var offSwarms: [InfoHash: String] = [:]

    public init(configuration: Configuration = .init(), seed: UInt64 = 0x5eed, namespace: @escaping @Sendable (InfoHash) -> String?) {
        self.configuration = configuration
        self.namespace = namespace
        self.rng = Xoshiro(seed: seed)
    }

    // MARK: - Events

    public mutating func connected(_ id: ConnectionID, now: Double) {
        connections[id] = Connection(tokens: configuration.messageBurst, refilledAt: now)
        statistics.connections = connections.count
    }

    /// The connection is gone: its peers leave their swarms now.
    public mutating func disconnected(_ id: ConnectionID) {
        guard let c = connections.removeValue(forKey: id) else { return }
        for (hash, peer) in c.swarms { leave(hash, peer) }
        statistics.connections = connections.count
    }

    /// One text message from a connection.
    public mutating func received(_ text: String, from id: ConnectionID, now: Double) -> [Action] {
        expire(now: now)
        guard connections[id] != nil else { return [] }
        let size = text.utf8.count
        if size > configuration.maxMessageBytes {
            return refuse(id, .messageTooLarge(bytes: size, limit: configuration.maxMessageBytes), action: nil, infoHash: nil, now: now)
        }
        guard takeToken(id, now: now) else {
            return refuse(id, .rateLimited(perSecond: configuration.messagesPerSecond), action: nil, infoHash: nil, now: now)
        }
        let request: TrackerRequest
        do {
            request = try TrackerRequest(parsing: text)
        } catch {
            return refuse(id, error, action: nil, infoHash: nil, now: now)
        }
        do throws(TrackerError) {
            let actions: [Action]
            switch request {
            case .announce(let a): actions = try announce(a, from: id, now: now)
            case .answer(let a): actions = try answer(a, from: id)
            case .scrape(let hashes): actions = scrape(hashes, from: id)
            }
            return actions
        } catch {
            let hash: InfoHash? = switch request {
            case .announce(let a): a.infoHash
            case .answer(let a): a.infoHash
            case .scrape: nil
            }
            return refuse(id, error, action: request.actionName, infoHash: hash, now: now)
        }
    }

    /// Forgets offers that waited longer than `offerTimeout`. Called with every message; the plumbing may also
    /// call it on a timer so that an idle tracker lets go of them.
    public mutating func expire(now: Double) {
        while let first = expiries.first, first.expires <= now {
            expiries.removeFirst()
            guard let p = pending[first.key], p.expires <= now else { continue }
            pending.removeValue(forKey: first.key)
            swarms[first.key.infoHash]?.releaseOffer(to: first.key.to, connection: p.toConnection)  // in place
        }
        statistics.pendingOffers = pending.count
    }

    /// Switches P2P for `stream` on or off. Off: every peer in the stream's swarms is told (``TrackerResponse/p2pOff(infoHash:stream:)``)
    /// and leaves it, offers relayed to them and not answered yet are forgotten, and announces get the same answer
    /// until P2P is on again. On: the next announce joins as usual.
    public mutating func setP2P(_ enabled: Bool, stream: String) -> [Action] {
        guard !enabled else {
            p2pOff.remove(stream)
            offSwarms = offSwarms.filter { $0.value != stream }
            return []
        }
        p2pOff.insert(stream)
        var actions: [Action] = []
        let hashes = Set(swarms.filter { $0.value.name == stream }.keys)
        for hash in hashes {
            for (peer, p) in swarms[hash]?.peers ?? [:] {
                actions.append(.send(p.connection, .p2pOff(infoHash: hash, stream: stream)))
                connections[p.connection]?.swarms.removeValue(forKey: hash)
                leave(hash, peer)
            }
        }
        pending = pending.filter { !hashes.contains($0.key.infoHash) }
        statistics.pendingOffers = pending.count
        return actions
    }

    // MARK: - Queries

    public var swarmCount: Int { swarms.count }

    /// Peers in the swarm, nil for no swarm.
    public func peerCount(_ hash: InfoHash) -> Int? { swarms[hash]?.count }

    /// Every swarm with its stream's name and its size.
    public func swarmSizes() -> [(infoHash: InfoHash, stream: String, peers: Int)] {
        swarms.map { ($0.key, $0.value.name, $0.value.count) }
    }

    /// The connections of the swarm `hash` that asked for part announcements (``TrackerResponse/part(infoHash:_:)``).
    public func partSubscribers(_ hash: InfoHash) -> [ConnectionID] {
        swarms[hash]?.peers.values.compactMap { $0.wantsParts ? $0.connection : nil } ?? []
    }

    // MARK: - Actions

    mutating func announce(_ a: TrackerRequest.Announce, from id: ConnectionID, now: Double) throws(TrackerError) -> [Action] {
        statistics.announces += 1
        guard let name = swarms[a.infoHash]?.name ?? offSwarms[a.infoHash] ?? namespace(a.infoHash) else { throw .unknownSwarm(a.infoHash) }
        var connection = connections[id]!
        if a.event == .stopped {
            if connection.swarms[a.infoHash] == a.peerID {
                connection.swarms.removeValue(forKey: a.infoHash)
                connections[id] = connection
                leave(a.infoHash, a.peerID)
            }
            return [.send(id, announced(a.infoHash, name: name))]
        }
        if p2pOff.contains(name) {
            if offSwarms[a.infoHash] == nil {
                if offSwarms.count >= 10_000 { offSwarms.removeAll() }  // old epochs of switched-off streams
                offSwarms[a.infoHash] = name
            }
            return [.send(id, .p2pOff(infoHash: a.infoHash, stream: name))]
        }
        // Refusals first, reading the swarm in place. It is then taken out of the dictionary while it changes: a
        // copy left behind would make every change copy the whole swarm (copy-on-write).
        let joining = swarms[a.infoHash]?.peers[a.peerID] == nil
        if !joining {
            guard swarms[a.infoHash]?.peers[a.peerID]?.connection == id else { throw .peerIDInUse }
        } else {
            guard (swarms[a.infoHash]?.count ?? 0) < configuration.maxPeersPerSwarm else {
                throw .swarmFull(limit: configuration.maxPeersPerSwarm)
            }
            if connection.swarms[a.infoHash] == nil, connection.swarms.count >= configuration.maxSwarmsPerConnection {
                throw .tooManySwarms(limit: configuration.maxSwarmsPerConnection)
            }
        }
        var swarm = swarms.removeValue(forKey: a.infoHash) ?? Swarm(name: name)
        if joining {
            if let previous = connection.swarms[a.infoHash] {
                // The same connection under a new peer id: the old one leaves.
                swarm.remove(previous)
                statistics.peers -= 1
            }
            swarm.add(a.peerID, connection: id)
            statistics.peers += 1
            connection.swarms[a.infoHash] = a.peerID
            connections[id] = connection
        }
        swarm.report(a.peerID, uploaded: a.uploaded, left: a.left, now: now)
        swarm.peers[a.peerID]!.wantsParts = a.wantsParts
        var actions: [Action] = []
        let wanted = min(a.offers.count, a.numwant ?? a.offers.count, configuration.maxOffersPerAnnounce)
        let targets = swarm.neighbours(for: a.peerID, count: wanted, pendingLimit: configuration.maxPendingOffersPerPeer, using: &rng)
        for (offer, target) in zip(a.offers, targets) {
            let key = PendingKey(infoHash: a.infoHash, to: target, offerID: offer.id)
            let to = swarm.peers[target]!.connection
            if let old = pending.removeValue(forKey: key) { swarm.releaseOffer(to: target, connection: old.toConnection) }
            let expires = now + configuration.offerTimeout
            pending[key] = Pending(from: a.peerID, fromConnection: id, toConnection: to, expires: expires)
            expiries.append((expires, key))
            swarm.peers[target]!.pendingOffers += 1
            actions.append(.send(to, .offer(infoHash: a.infoHash, from: a.peerID, offerID: offer.id, sdp: offer.description.sdp)))
            statistics.offersRelayed += 1
        }
        swarms[a.infoHash] = swarm
        statistics.swarms = swarms.count
        statistics.pendingOffers = pending.count
        return [.send(id, announced(a.infoHash, name: name))] + actions
    }

    mutating func answer(_ a: TrackerRequest.Answer, from id: ConnectionID) throws(TrackerError) -> [Action] {
        guard connections[id]?.swarms[a.infoHash] == a.peerID else { throw .notInSwarm }
        let key = PendingKey(infoHash: a.infoHash, to: a.peerID, offerID: a.offerID)
        guard let p = pending[key], p.from == a.toPeerID, p.toConnection == id else { throw .noSuchOffer }
        pending.removeValue(forKey: key)
        swarms[a.infoHash]?.releaseOffer(to: a.peerID, connection: p.toConnection)  // in place
        statistics.pendingOffers = pending.count
        // The offerer may have left since; its connection is then gone and the answer has nowhere to go.
        guard swarms[a.infoHash]?.peers[p.from]?.connection == p.fromConnection else { throw .noSuchOffer }
        statistics.answersRelayed += 1
        return [.send(p.fromConnection, .answer(infoHash: a.infoHash, from: a.peerID, offerID: a.offerID, sdp: a.description.sdp))]
    }

    func scrape(_ hashes: [InfoHash], from id: ConnectionID) -> [Action] {
        let wanted = hashes.isEmpty ? Array(swarms.keys) : hashes
        let entries = wanted.compactMap { h -> (InfoHash, complete: Int, incomplete: Int)? in
            guard let s = swarms[h] else { return hashes.isEmpty ? nil : (h, 0, 0) }
            return (h, s.completeCount, s.count - s.completeCount)
        }
        return [.send(id, .scrape(entries))]
    }

    // MARK: - Helpers

    func announced(_ hash: InfoHash, name: String) -> TrackerResponse {
        let s = swarms[hash]
        let complete = s?.completeCount ?? 0
        return .announced(infoHash: hash, interval: configuration.announceInterval, complete: complete,
                          incomplete: (s?.count ?? 0) - complete, stream: name, peerLimit: configuration.maxPeersPerSwarm)
    }

    mutating func leave(_ hash: InfoHash, _ peer: PeerID) {
        guard swarms[hash]?.peers[peer] != nil else { return }
        swarms[hash]?.remove(peer)  // in place
        statistics.peers -= 1
        if swarms[hash]?.count == 0 { swarms[hash] = nil }
        statistics.swarms = swarms.count
    }

    mutating func takeToken(_ id: ConnectionID, now: Double) -> Bool {
        guard var c = connections[id] else { return false }
        c.tokens = min(configuration.messageBurst, c.tokens + max(0, now - c.refilledAt) * configuration.messagesPerSecond)
        c.refilledAt = now
        let ok = c.tokens >= 1
        if ok { c.tokens -= 1 }
        connections[id] = c
        return ok
    }

    mutating func refuse(_ id: ConnectionID, _ error: TrackerError, action: String?, infoHash: InfoHash?, now: Double) -> [Action] {
        statistics.refused += 1
        var actions: [Action] = [.send(id, .failure(reason: error.description, action: action, infoHash: infoHash))]
        if var c = connections[id] {
            if now - c.refusalWindowStart > configuration.refusalWindow {
                c.refusalWindowStart = now
                c.refusals = 0
            }
            c.refusals += 1
            connections[id] = c
        }
        if error.closesConnection || (connections[id]?.refusals ?? 0) >= configuration.maxRefusals {
            actions.append(.close(id, error))
            statistics.closed += 1
            disconnected(id)
        }
        return actions
    }
}

extension TrackerRequest {
    var actionName: String {
        switch self {
        case .announce, .answer: "announce"
        case .scrape: "scrape"
        }
    }
}

/// xoshiro256** (Blackman and Vigna): a small, fast generator so that neighbour choice is reproducible in tests.
struct Xoshiro: RandomNumberGenerator, Sendable {
    var s: (UInt64, UInt64, UInt64, UInt64)

    init(seed: UInt64) {
        // SplitMix64 spreads the seed over the state, as the authors recommend.
        var x = seed
        func next() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (next(), next(), next(), next())
    }

    mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = s.3 << 45 | s.3 >> 19
        return result
    }
}
