/// The peers of one stream's swarm. Peers are kept in a dictionary and in an array (for sampling at random in
/// constant time); removal swaps the last peer into the hole.
struct Swarm: Sendable {
    struct Peer: Sendable {
        var connection: Tracker.ConnectionID
        /// Position in `order`.
        var slot: Int
        /// `left: 0` (a seed, in BitTorrent's words); live viewers never are, but the counts follow the protocol.
        var complete = false
        /// The last `uploaded` the peer reported, and when.
        var uploaded: Double?
        var uploadedAt: Double = 0
        /// Bytes a second, from the last two reports at least a second apart.
        var uploadRate: Double = 0
        /// Offers relayed to this peer and not answered or expired yet.
        var pendingOffers = 0
        /// It asked for part announcements (`x_liveswarm.parts` in its last announce).
        var wantsParts = false
    }

    let name: String
    var peers: [PeerID: Peer] = [:]
    var order: [PeerID] = []
    var completeCount = 0

    init(name: String) { self.name = name }

    var count: Int { order.count }

    mutating func add(_ id: PeerID, connection: Tracker.ConnectionID) {
        peers[id] = Peer(connection: connection, slot: order.count)
        order.append(id)
    }

    mutating func remove(_ id: PeerID) {
        guard let peer = peers.removeValue(forKey: id) else { return }
        if peer.complete { completeCount -= 1 }
        let last = order.removeLast()
        if last != id {
            order[peer.slot] = last
            peers[last]?.slot = peer.slot
        }
    }

    /// An offer relayed to `to` was answered or expired. Counted only if `to` is still the peer on `connection`
    /// (a peer that left and came back under the same id starts from nothing).
    mutating func releaseOffer(to: PeerID, connection: Tracker.ConnectionID) {
        if let peer = peers[to], peer.connection == connection, peer.pendingOffers > 0 {
            peers[to]!.pendingOffers -= 1
        }
    }

    mutating func report(_ id: PeerID, uploaded: Double?, left: Double?, now: Double) {
        guard var p = peers[id] else { return }
        if let left {
            let complete = left == 0
            if complete != p.complete { completeCount += complete ? 1 : -1 }
            p.complete = complete
        }
        if let uploaded, uploaded >= 0 {
            if let before = p.uploaded {
                let elapsed = now - p.uploadedAt
                if elapsed >= 1 {
                    p.uploadRate = max(0, uploaded - before) / elapsed
                    p.uploaded = uploaded
                    p.uploadedAt = now
                }
            } else {
                p.uploaded = uploaded
                p.uploadedAt = now
            }
        }
        peers[id] = p
    }

    /// Up to `count` peers other than `except` to send offers to, none with `pendingLimit` offers waiting.
    ///
    /// Half (rounded up) are the best measured uploaders among a random sample three times the size wanted; the
    /// rest are drawn at random from what remains, so that peers nobody has measured yet get neighbours too.
    func neighbours(for except: PeerID, count: Int, pendingLimit: Int, using rng: inout some RandomNumberGenerator) -> [PeerID] {
        guard count > 0, order.count > 1 else { return [] }
        let sampleSize = min(order.count - 1, count * 3)
        var sample: [PeerID] = []
        sample.reserveCapacity(sampleSize)
        if order.count - 1 <= sampleSize {
            sample = order.filter { $0 != except }
            sample.shuffle(using: &rng)
        } else {
            // Distinct random slots; the attempt bound keeps a swarm of busy peers from looping.
            var seen = Set<Int>()
            var attempts = 0
            while sample.count < sampleSize && attempts < sampleSize * 4 {
                attempts += 1
                let slot = Int.random(in: 0..<order.count, using: &rng)
                guard seen.insert(slot).inserted, order[slot] != except else { continue }
                sample.append(order[slot])
            }
        }
        sample.removeAll { (peers[$0]?.pendingOffers ?? pendingLimit) >= pendingLimit }
        let byUpload = sample.enumerated().sorted {
            let (a, b) = (peers[$0.element]!.uploadRate, peers[$1.element]!.uploadRate)
            return a != b ? a > b : $0.offset < $1.offset
        }.map(\.element)
        let best = Array(byUpload.prefix((count + 1) / 2))
        let rest = sample.filter { !best.contains($0) }
        return best + rest.prefix(count - best.count)
    }
}
