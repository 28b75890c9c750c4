import Foundation

/// A message from a peer to the tracker, in the WebTorrent tracker protocol (JSON text frames over a WebSocket,
/// as `bittorrent-tracker` and p2p-media-loader speak it).
///
/// ```
/// {"action":"announce","info_hash":BIN20,"peer_id":BIN20,"numwant":5,"uploaded":0,"downloaded":0,"left":0,
///  "event":"started","offers":[{"offer_id":"...","offer":{"type":"offer","sdp":"..."}}],
///  "x_liveswarm":{"parts":true}}
/// {"action":"announce","info_hash":BIN20,"peer_id":BIN20,"to_peer_id":BIN20,"offer_id":"...",
///  "answer":{"type":"answer","sdp":"..."}}
/// {"action":"scrape","info_hash":[BIN20, ...]}
/// ```
public enum TrackerRequest: Equatable, Sendable {
    case announce(Announce)
    case answer(Answer)
    case scrape([InfoHash])

    public enum Event: String, Sendable {
        case started, stopped, completed, update
    }

    /// A session description as the browser's `RTCSessionDescription` serialises it.
    public struct Description: Equatable, Sendable {
        public var type: String
        public var sdp: String
    }

    public struct Offer: Equatable, Sendable {
        /// Chosen by the offering peer; echoed with the answer so it can match the two.
        public var id: String
        public var description: Description
    }

    public struct Announce: Equatable, Sendable {
        public var infoHash: InfoHash
        public var peerID: PeerID
        public var numwant: Int?
        /// Bytes the peer has sent to others so far (WebTorrent's field); the tracker measures upload from it.
        public var uploaded: Double?
        public var downloaded: Double?
        public var left: Double?
        public var event: Event?
        public var offers: [Offer]
        /// `x_liveswarm.parts`: the peer wants each new part of the stream announced to it as it is made
        /// (``TrackerResponse/part(infoHash:_:)``), so that it need not reload the playlist for each.
        public var wantsParts = false
    }

    public struct Answer: Equatable, Sendable {
        public var infoHash: InfoHash
        public var peerID: PeerID
        public var toPeerID: PeerID
        public var offerID: String
        public var description: Description
    }

    /// Offer ids are opaque to the tracker; `bittorrent-tracker` clients send 40 hex characters.
    static let maxOfferIDLength = 64

    public init(parsing text: String) throws(TrackerError) {
        let object: [String: Any]
        do {
            guard let o = try JSONSerialization.jsonObject(with: Data(text.utf8), options: []) as? [String: Any] else {
                throw TrackerError.malformedJSON
            }
            object = o
        } catch let e as TrackerError {
            throw e
        } catch {
            throw .malformedJSON
        }
        let fields = Fields(object: object)
        guard let action = try fields.string("action") else { throw .missingField("action") }
        switch action {
        case "announce":
            let infoHash = try fields.binary20("info_hash")
            let peerID = try fields.binary20("peer_id")
            if let answer = try fields.description("answer", type: "answer") {
                guard let to = try fields.optionalBinary20("to_peer_id") else { throw .missingField("to_peer_id") }
                guard let offerID = try fields.offerID("offer_id") else { throw .missingField("offer_id") }
                self = .answer(Answer(infoHash: infoHash, peerID: peerID, toPeerID: to, offerID: offerID, description: answer))
                return
            }
            var event: Event?
            if let e = try fields.string("event"), !e.isEmpty {
                guard let known = Event(rawValue: e) else { throw .malformedField("event") }
                event = known
            }
            var offers: [Offer] = []
            if let raw = object["offers"] {
                guard let list = raw as? [Any] else { throw .malformedField("offers") }
                for item in list {
                    guard let o = item as? [String: Any] else { throw .malformedField("offers") }
                    let f = Fields(object: o)
                    guard let id = try f.offerID("offer_id") else { throw .missingField("offers[].offer_id") }
                    guard let d = try f.description("offer", type: "offer") else { throw .missingField("offers[].offer") }
                    offers.append(Offer(id: id, description: d))
                }
            }
            var numwant: Int?
            if let n = try fields.number("numwant") {
                guard n >= 0, n <= 1_000_000 else { throw .malformedField("numwant") }
                numwant = Int(n)
            }
            var wantsParts = false
            if let raw = fields.value("x_liveswarm") {
                guard let x = raw as? [String: Any] else { throw .malformedField("x_liveswarm") }
                wantsParts = try Fields(object: x).bool("parts", field: "x_liveswarm.parts") ?? false
            }
            self = .announce(Announce(infoHash: infoHash, peerID: peerID, numwant: numwant,
                                      uploaded: try fields.number("uploaded"), downloaded: try fields.number("downloaded"),
                                      left: try fields.number("left"), event: event, offers: offers, wantsParts: wantsParts))
        case "scrape":
            var hashes: [InfoHash] = []
            switch object["info_hash"] {
            case nil: break
            case let s as String: hashes = [try Fields.binary20(s, field: "info_hash")]
            case let list as [Any]:
                for item in list {
                    guard let s = item as? String else { throw .malformedField("info_hash") }
                    hashes.append(try Fields.binary20(s, field: "info_hash"))
                }
            default: throw .malformedField("info_hash")
            }
            self = .scrape(hashes)
        default:
            throw .unknownAction(action)
        }
    }

    /// Typed reads of a JSON object's fields: absent or null is nil; present with the wrong type throws.
    struct Fields {
        let object: [String: Any]

        func value(_ name: String) -> Any? {
            guard let v = object[name], !(v is NSNull) else { return nil }
            return v
        }

        func string(_ name: String) throws(TrackerError) -> String? {
            guard let v = value(name) else { return nil }
            guard let s = v as? String else { throw .malformedField(name) }
            return s
        }

        func number(_ name: String) throws(TrackerError) -> Double? {
            guard let v = value(name) else { return nil }
            // JSONSerialization gives NSNumber for numbers and for booleans (`is Bool` holds for 0 and 1 on Linux);
            // booleans are the ones of type "c".
            guard let n = v as? NSNumber, String(cString: n.objCType) != "c", n.doubleValue.isFinite else {
                throw .malformedField(name)
            }
            return n.doubleValue
        }

        func bool(_ name: String, field: String) throws(TrackerError) -> Bool? {
            guard let v = value(name) else { return nil }
            guard let n = v as? NSNumber, String(cString: n.objCType) == "c" else { throw .malformedField(field) }
            return n.boolValue
        }

        static func binary20(_ s: String, field: String) throws(TrackerError) -> Bytes20 {
            guard let b = Bytes20(binaryString: s) else {
                let count = s.unicodeScalars.count
                throw count == 20 ? .malformedField(field) : .wrongLength(field: field, characters: count)
            }
            return b
        }

        func optionalBinary20(_ name: String) throws(TrackerError) -> Bytes20? {
            guard let s = try string(name) else { return nil }
            return try Self.binary20(s, field: name)
        }

        func binary20(_ name: String) throws(TrackerError) -> Bytes20 {
            guard let b = try optionalBinary20(name) else { throw .missingField(name) }
            return b
        }

        func offerID(_ name: String) throws(TrackerError) -> String? {
            guard let s = try string(name) else { return nil }
            guard !s.isEmpty, s.utf8.count <= TrackerRequest.maxOfferIDLength else { throw .malformedField(name) }
            return s
        }

        func description(_ name: String, type: String) throws(TrackerError) -> Description? {
            guard let v = value(name) else { return nil }
            guard let o = v as? [String: Any] else { throw .malformedField(name) }
            let f = Fields(object: o)
            guard let t = try f.string("type"), t == type else { throw .malformedField("\(name).type") }
            guard let sdp = try f.string("sdp") else { throw .missingField("\(name).sdp") }
            return Description(type: t, sdp: sdp)
        }
    }
}
