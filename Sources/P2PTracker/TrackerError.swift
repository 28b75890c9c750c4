/// Why the tracker refused a message. Each becomes a `failure reason` sent to the peer (the WebTorrent tracker
/// protocol's error); the connection stays open unless ``closesConnection``.
public enum TrackerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Not JSON, or JSON that is not an object.
    case malformedJSON
    /// A known field of the wrong type or shape.
    case malformedField(String)
    case missingField(String)
    case unknownAction(String)
    /// `info_hash` or `peer_id` that is not a binary string of 20 characters.
    case wrongLength(field: String, characters: Int)
    /// An info hash that names no live LiveSwarm stream.
    case unknownSwarm(InfoHash)
    case messageTooLarge(bytes: Int, limit: Int)
    case swarmFull(limit: Int)
    case tooManySwarms(limit: Int)
    /// The peer id is held by another connection in this swarm.
    case peerIDInUse
    /// An answer or update from a connection that has not announced itself in the swarm under this peer id.
    case notInSwarm
    /// An answer naming an offer the tracker never relayed to this peer from `to_peer_id` (or one that expired).
    case noSuchOffer
    /// Announces over the connection's rate.
    case rateLimited(perSecond: Double)

    public var description: String {
        switch self {
        case .malformedJSON: "malformed message: not a JSON object"
        case .malformedField(let f): "malformed field \(f)"
        case .missingField(let f): "missing field \(f)"
        case .unknownAction(let a): "unknown action \"\(a.prefix(40))\" (this tracker knows announce and scrape)"
        case .wrongLength(let f, let n): "\(f) must be a binary string of 20 characters, not \(n)"
        case .unknownSwarm(let h): "unknown info_hash \(h.hex): not a live LiveSwarm stream"
        case .messageTooLarge(let n, let limit): "message of \(n) bytes is over the limit of \(limit)"
        case .swarmFull(let limit): "swarm is full (\(limit) peers): play from the origin"
        case .tooManySwarms(let limit): "a connection may join at most \(limit) swarms"
        case .peerIDInUse: "peer_id is in use by another connection in this swarm"
        case .notInSwarm: "announce in this swarm first"
        case .noSuchOffer: "no such offer: answer only offers this tracker relayed to you"
        case .rateLimited(let r): "too many announces: at most \(r) a second on average"
        }
    }

    /// Errors after which the connection is closed: an oversized message is a client that does not follow the
    /// documented limits.
    public var closesConnection: Bool {
        if case .messageTooLarge = self { return true }
        return false
    }
}
