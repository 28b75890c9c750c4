/// Messages from the tracker to a peer, written as JSON text. Hand-written rather than through `JSONEncoder`:
/// the tracker relays every offer and answer, and their SDP is most of its output.
public enum TrackerResponse: Equatable, Sendable {
    /// The reply to an announce. `complete`/`incomplete` count peers that reported `left: 0` and the others.
    /// `x_liveswarm` is this tracker's extension (documented in docs/P2P.md): the stream's name, the swarm's
    /// size and limit.
    case announced(infoHash: InfoHash, interval: Int, complete: Int, incomplete: Int, stream: String, peerLimit: Int)
    /// An offer relayed from `from`.
    case offer(infoHash: InfoHash, from: PeerID, offerID: String, sdp: String)
    /// An answer relayed from `from`.
    case answer(infoHash: InfoHash, from: PeerID, offerID: String, sdp: String)
    case scrape([(InfoHash, complete: Int, incomplete: Int)])
    /// The protocol's error; `action` and `info_hash` are echoed when known, as bittorrent-tracker does.
    case failure(reason: String, action: String?, infoHash: InfoHash?)
    /// The operator switched P2P off for the stream: a failure with `x_liveswarm.p2p` false, sent to every peer of
    /// its swarm at the switch and in answer to announces until it is on again. The peer plays from the origin and
    /// announces again later; an ordinary `announced` answer says P2P is back.
    case p2pOff(infoHash: InfoHash, stream: String)
    /// A part the origin has just made, sent to the swarm's peers that asked (`x_liveswarm.parts`): an `announce`
    /// with no `interval`, `offer` or `answer`, so WebTorrent clients pass over it. Only the tracker writes
    /// `x_liveswarm`: what peers send is relayed field by field (offers and answers), never as it came, so a peer
    /// cannot forge an announcement.
    case part(infoHash: InfoHash, Announcement)

    /// ``part(infoHash:_:)``'s content: what a player needs to fetch, check and place a part without the playlist.
    public struct Announcement: Equatable, Sendable {
        /// "SEGMENT.PART".
        public var id: String
        public var bytes: Int
        /// Base64 of the SHA-256, as the playlist's X-SHA256.
        public var sha256: String
        public var durationMs: Int
        public var independent: Bool
        /// Wall-clock ms of its first frame's arrival at the origin.
        public var time: Int64
        /// Its initialization section's id (`init-ID.mp4`).
        public var initID: Int

        public init(id: String, bytes: Int, sha256: String, durationMs: Int, independent: Bool, time: Int64, initID: Int) {
            self.id = id
            self.bytes = bytes
            self.sha256 = sha256
            self.durationMs = durationMs
            self.independent = independent
            self.time = time
            self.initID = initID
        }
    }

    public static func == (a: TrackerResponse, b: TrackerResponse) -> Bool { a.json == b.json }

    public var json: String {
        var out = JSONWriter()
        switch self {
        case let .announced(hash, interval, complete, incomplete, stream, limit):
            out.open()
            out.field("action", "announce")
            out.field("interval", interval)
            out.field("info_hash", hash.binaryString)
            out.field("complete", complete)
            out.field("incomplete", incomplete)
            out.key("x_liveswarm")
            out.open()
            out.field("stream", stream)
            out.field("peers", complete + incomplete)
            out.field("peer_limit", limit)
            out.close()
            out.close()
        case let .offer(hash, from, id, sdp), let .answer(hash, from, id, sdp):
            let isOffer = if case .offer = self { true } else { false }
            out.open()
            out.field("action", "announce")
            out.key(isOffer ? "offer" : "answer")
            out.open()
            out.field("type", isOffer ? "offer" : "answer")
            out.field("sdp", sdp)
            out.close()
            out.field("offer_id", id)
            out.field("peer_id", from.binaryString)
            out.field("info_hash", hash.binaryString)
            out.close()
        case let .scrape(entries):
            out.open()
            out.field("action", "scrape")
            out.key("files")
            out.open()
            for (hash, complete, incomplete) in entries {
                out.key(hash.binaryString)
                out.open()
                out.field("complete", complete)
                out.field("incomplete", incomplete)
                out.field("downloaded", 0)
                out.close()
            }
            out.close()
            out.close()
        case let .failure(reason, action, hash):
            out.open()
            out.field("failure reason", reason)
            if let action { out.field("action", action) }
            if let hash { out.field("info_hash", hash.binaryString) }
            out.close()
        case let .part(hash, a):
            out.open()
            out.field("action", "announce")
            out.field("info_hash", hash.binaryString)
            out.key("x_liveswarm")
            out.open()
            out.key("part")
            out.open()
            out.field("id", a.id)
            out.field("bytes", a.bytes)
            out.field("sha256", a.sha256)
            out.field("duration_ms", a.durationMs)
            out.field("independent", a.independent)
            out.field("time", Int(a.time))
            out.field("init", a.initID)
            out.close()
            out.close()
            out.close()
        case let .p2pOff(hash, stream):
            out.open()
            out.field("failure reason", "P2P is off for \(stream) (switched off by the operator): play from the origin")
            out.field("action", "announce")
            out.field("info_hash", hash.binaryString)
            out.key("x_liveswarm")
            out.open()
            out.field("stream", stream)
            out.field("p2p", false)
            out.close()
            out.close()
        }
        return out.text
    }
}

/// Just enough of a JSON writer for the tracker's replies: objects, strings and integers.
struct JSONWriter {
    var text = ""
    var needsComma = false

    mutating func open() {
        if needsComma { text += "," }
        text += "{"
        needsComma = false
    }

    mutating func close() {
        text += "}"
        needsComma = true
    }

    mutating func key(_ k: String) {
        if needsComma { text += "," }
        Self.quote(k, into: &text)
        text += ":"
        needsComma = false
    }

    mutating func field(_ k: String, _ v: String) {
        key(k)
        Self.quote(v, into: &text)
        needsComma = true
    }

    mutating func field(_ k: String, _ v: Int) {
        key(k)
        text += String(v)
        needsComma = true
    }

    mutating func field(_ k: String, _ v: Bool) {
        key(k)
        text += v ? "true" : "false"
        needsComma = true
    }

    /// RFC 8259 section 7: quotation mark, reverse solidus and control characters are escaped; everything else,
    /// binary-string characters U+0080...U+00FF included, goes as UTF-8.
    static func quote(_ s: String, into out: inout String) {
        out += "\""
        var plainStart = s.unicodeScalars.startIndex
        var i = plainStart
        let scalars = s.unicodeScalars
        while i < scalars.endIndex {
            let c = scalars[i]
            if c == "\"" || c == "\\" || c.value < 0x20 {
                out.unicodeScalars.append(contentsOf: scalars[plainStart..<i])
                switch c {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                default:
                    let hex = String(c.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                }
                plainStart = scalars.index(after: i)
            }
            i = scalars.index(after: i)
        }
        out.unicodeScalars.append(contentsOf: scalars[plainStart..<scalars.endIndex])
        out += "\""
    }
}
