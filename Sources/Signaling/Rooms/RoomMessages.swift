import Foundation

/// The room protocol's messages (docs/ROOMS.md): JSON objects with a `type`, one per WebSocket text frame.
public enum RoomProtocol {
    public static let version = 1
}

/// What a client sends.
public enum ClientMessage: Sendable, Equatable {
    public struct Join: Sendable, Equatable, Decodable {
        public var version: Int
        public var room: String
        public var name: String
        public var token: String?
    }

    case join(Join)
    /// Takes a held seat back on a new connection, with the token `joined` gave.
    case resume(version: Int, token: String)
    /// The publish PeerConnection's offer, and what each sending mid carries ("camera", "microphone", "screen",
    /// "screenAudio"; by default the microphone for audio and the camera for video).
    case publish(sdp: String, sources: [String: String])
    /// The subscribe PeerConnection's offer, and the track each `recvonly` mid is for.
    case subscribe(sdp: String, tracks: [String: String])
    /// Forward a track to this client or not; the tile's size is kept for simulcast (not used yet).
    case subscription(track: String, enabled: Bool, width: Int?, height: Int?)
    case mute(track: String, muted: Bool)
    /// The pong to send back: the ping's own fields with `type` set to "pong".
    case ping(pong: JSONValue)
    /// Trickled ICE candidates: accepted and ignored (the server is ICE-lite and learns addresses from checks).
    case candidate
    case leave

    /// The message's `type`, for error replies.
    public var type: String {
        switch self {
        case .join: "join"
        case .resume: "resume"
        case .publish: "publish"
        case .subscribe: "subscribe"
        case .subscription: "subscription"
        case .mute: "mute"
        case .ping: "ping"
        case .candidate: "candidate"
        case .leave: "leave"
        }
    }

    /// Reads one message. The error carries the `type` when there was one, so the reply can name it.
    public init(parsing text: String) throws(RoomError) {
        let data = Data(text.utf8)
        let envelope: JSONValue
        do { envelope = try JSONDecoder().decode(JSONValue.self, from: data) } catch {
            throw RoomError(.malformed, "not JSON")
        }
        guard case .object(let fields) = envelope else { throw RoomError(.malformed, "a message is a JSON object") }
        guard case .string(let type)? = fields["type"] else { throw RoomError(.malformed, "no \"type\" string") }
        func decode<T: Decodable>(_: T.Type) throws(RoomError) -> T {
            do { return try JSONDecoder().decode(T.self, from: data) } catch let DecodingError.keyNotFound(key, _) {
                throw RoomError(.malformed, "\(type): no \"\(key.stringValue)\"", request: type)
            } catch let DecodingError.typeMismatch(_, context) {
                throw RoomError(.malformed, "\(type): \"\(context.codingPath.map(\.stringValue).joined(separator: "."))\" has the wrong type",
                                request: type)
            } catch {
                throw RoomError(.malformed, "\(type): \(error)", request: type)
            }
        }
        switch type {
        case "join":
            self = .join(try decode(Join.self))
        case "resume":
            struct R: Decodable { var version: Int; var token: String }
            let r = try decode(R.self)
            self = .resume(version: r.version, token: r.token)
        case "publish":
            struct P: Decodable { var sdp: String; var sources: [String: String]? }
            let p = try decode(P.self)
            let sources = p.sources ?? [:]
            if let bad = sources.values.first(where: { !TrackInfo.sources.contains($0) }) {
                throw RoomError(.malformed, "publish: source \"\(bad.prefix(40))\" is not one of \(TrackInfo.sources.sorted().joined(separator: ", "))",
                                request: type)
            }
            self = .publish(sdp: p.sdp, sources: sources)
        case "subscribe":
            struct S: Decodable { var sdp: String; var tracks: [String: String] }
            let s = try decode(S.self)
            self = .subscribe(sdp: s.sdp, tracks: s.tracks)
        case "subscription":
            struct S: Decodable { var track: String; var enabled: Bool; var width: Int?; var height: Int? }
            let s = try decode(S.self)
            self = .subscription(track: s.track, enabled: s.enabled, width: s.width, height: s.height)
        case "mute":
            struct M: Decodable { var track: String; var muted: Bool }
            let m = try decode(M.self)
            self = .mute(track: m.track, muted: m.muted)
        case "ping":
            var pong = fields
            pong["type"] = .string("pong")
            self = .ping(pong: .object(pong))
        case "candidate":
            self = .candidate
        case "leave":
            self = .leave
        default:
            throw RoomError(.unknownType, "no message type \"\(type.prefix(40))\" in protocol version \(RoomProtocol.version)",
                            request: String(type.prefix(40)))
        }
    }
}

/// A participant as the others see it.
public struct ParticipantInfo: Sendable, Equatable, Encodable {
    public var id: String
    public var name: String
    public var tracks: [TrackInfo]

    public init(id: String, name: String, tracks: [TrackInfo]) { (self.id, self.name, self.tracks) = (id, name, tracks) }
}

public struct TrackInfo: Sendable, Equatable, Encodable {
    public var id: String
    /// "audio" or "video".
    public var kind: String
    public var muted: Bool
    /// What it carries: "camera", "microphone", "screen" or "screenAudio".
    public var source: String

    public static let sources: Set<String> = ["camera", "microphone", "screen", "screenAudio"]

    public init(id: String, kind: String, muted: Bool, source: String? = nil) {
        (self.id, self.kind, self.muted) = (id, kind, muted)
        self.source = source ?? (kind == "audio" ? "microphone" : "camera")
    }
}

/// What the server sends.
public enum ServerMessage: Sendable, Equatable {
    public struct Joined: Sendable, Equatable {
        public var room: String
        public var you: ParticipantInfo
        public var canPublish: Bool
        public var participants: [ParticipantInfo]
        /// For `RTCPeerConnection`: STUN, and TURN with credentials minted for this connection.
        public var iceServers: [ICEServer]
        public var videoCodec: String
        public var resumeToken: String
        /// The room's active speaker now, if any.
        public var activeSpeaker: String? = nil
    }

    public struct PublishedTrack: Sendable, Equatable, Encodable {
        public var id: String
        public var kind: String
        public var mid: String

        public init(id: String, kind: String, mid: String) { (self.id, self.kind, self.mid) = (id, kind, mid) }
    }

    case joined(Joined)
    /// The answer to `resume`: the same snapshot as `joined`, as things are now.
    case resumed(Joined)
    case publishAnswer(sdp: String, tracks: [PublishedTrack])
    case subscribeAnswer(sdp: String)
    case participantJoined(ParticipantInfo)
    case participantLeft(id: String, reason: LeaveReason)
    case trackPublished(participant: String, track: TrackInfo)
    case trackUnpublished(participant: String, track: String)
    case trackMuted(participant: String, track: String, muted: Bool)
    /// The room's active speaker changed (nil: nobody speaks).
    case activeSpeaker(participant: String?)
    case pong(JSONValue)
    case error(RoomError)

    public enum LeaveReason: String, Sendable { case left, disconnected, removed, replaced }

    /// One line of JSON.
    public var json: String {
        let value: JSONValue
        switch self {
        case .joined(let j), .resumed(let j):
            let type: JSONValue = if case .joined = self { "joined" } else { "resumed" }
            value = .object([
                "type": type, "version": .number(Double(RoomProtocol.version)), "room": .string(j.room),
                "you": .object(["id": .string(j.you.id), "name": .string(j.you.name), "canPublish": .bool(j.canPublish),
                                "tracks": .array(j.you.tracks.map(JSONValue.init))]),
                "participants": .array(j.participants.map(JSONValue.init)),
                "iceServers": .array(j.iceServers.map { server in
                    var o: [String: JSONValue] = ["urls": .array(server.urls.map(JSONValue.string))]
                    if let u = server.username, let c = server.credential { (o["username"], o["credential"]) = (.string(u), .string(c)) }
                    return .object(o)
                }),
                "codecs": .object(["audio": "opus", "video": .string(j.videoCodec)]),
                "resumeToken": .string(j.resumeToken),
                "activeSpeaker": j.activeSpeaker.map(JSONValue.string) ?? .null,
            ])
        case .publishAnswer(let sdp, let tracks):
            value = .object(["type": "publishAnswer", "sdp": .string(sdp), "tracks": .array(tracks.map { t in
                .object(["id": .string(t.id), "kind": .string(t.kind), "mid": .string(t.mid)])
            })])
        case .subscribeAnswer(let sdp):
            value = .object(["type": "subscribeAnswer", "sdp": .string(sdp)])
        case .participantJoined(let p):
            value = .object(["type": "participantJoined", "participant": JSONValue(p)])
        case .participantLeft(let id, let reason):
            value = .object(["type": "participantLeft", "participant": .string(id), "reason": .string(reason.rawValue)])
        case .trackPublished(let p, let t):
            value = .object(["type": "trackPublished", "participant": .string(p), "track": JSONValue(t)])
        case .trackUnpublished(let p, let t):
            value = .object(["type": "trackUnpublished", "participant": .string(p), "track": .string(t)])
        case .trackMuted(let p, let t, let muted):
            value = .object(["type": "trackMuted", "participant": .string(p), "track": .string(t), "muted": .bool(muted)])
        case .activeSpeaker(let p):
            value = .object(["type": "activeSpeaker", "participant": p.map(JSONValue.string) ?? .null])
        case .pong(let v):
            value = v
        case .error(let e):
            var o: [String: JSONValue] = ["type": "error", "code": .string(e.code.rawValue), "message": .string(e.message)]
            if let r = e.request { o["request"] = .string(r) }
            value = .object(o)
        }
        return value.text
    }
}

extension JSONValue {
    init(_ p: ParticipantInfo) {
        self = .object(["id": .string(p.id), "name": .string(p.name), "tracks": .array(p.tracks.map(JSONValue.init))])
    }

    init(_ t: TrackInfo) {
        self = .object(["id": .string(t.id), "kind": .string(t.kind), "muted": .bool(t.muted), "source": .string(t.source)])
    }
}

/// An error reply: a code a program can act on, a message for people, and the request it answers.
public struct RoomError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, CaseIterable {
        case malformed, unknownType, unsupportedVersion, notJoined, alreadyJoined, badRoomName, badName
        case tokenRequired, badToken, tokenExpired, wrongRoom, publishNotAllowed
        case roomFull, tooManyRooms, tooManyTracks, badSDP, codecUnsupported, unknownTrack, unavailable
        case resumeFailed, removed
    }

    public var code: Code
    public var message: String
    public var request: String?

    public init(_ code: Code, _ message: String, request: String? = nil) {
        (self.code, self.message, self.request) = (code, message, request)
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

/// Any JSON value, for messages whose fields are echoed (ping) and for writing replies with stable key order.
public enum JSONValue: Sendable, Equatable, Codable, ExpressibleByStringLiteral {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(stringLiteral value: String) { self = .string(value) }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let n): if n == n.rounded(), abs(n) < 1e15 { try c.encode(Int64(n)) } else { try c.encode(n) }
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    /// Compact JSON with sorted keys.
    public var text: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
    }
}
