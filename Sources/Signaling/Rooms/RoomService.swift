import Foundation

/// The media side of rooms as the protocol sees it: the SFU in the server (``SFURoomMedia``), a recording fake in
/// tests. Calls are short and synchronous (they answer SDP and move consumers; no waiting on the network).
public protocol RoomMedia: Sendable {
    /// The publish PeerConnection's offer: its sending sections become the participant's tracks.
    func publish(room: String, participant: String, offer: String, maxTracks: Int) throws(RoomError)
        -> (answer: String, tracks: [ServerMessage.PublishedTrack])
    /// The subscribe PeerConnection's offer, with the track each mid is for. Returns the answer and the tracks it
    /// could not send (codec): their sections are inactive.
    func subscribe(room: String, participant: String, offer: String, tracks: [String: String]) throws(RoomError)
        -> (answer: String, refused: [String])
    /// Forwarding of one track to one participant, on or off. False when the participant has no such subscription.
    func setSubscription(room: String, participant: String, track: String, enabled: Bool) -> Bool
    /// The participant is gone: its transports close, its tracks leave everyone's subscriptions.
    func remove(room: String, participant: String)
}

/// The rooms' signaling as a state machine with no I/O: WebSocket connections, their messages and the time come
/// in; messages to send and connections to close come out. Media is delegated to ``RoomMedia``.
///
/// Membership lives here (who is in which room, their tracks and mute state); the SFU only forwards.
public struct RoomService: Sendable {
    public struct Configuration: Sendable, Equatable {
        public var maxRooms = 100
        public var maxParticipants = 16
        public var maxTracksPerParticipant = 4
        /// Larger frames are refused by the WebSocket itself (close 1009).
        public var maxMessageBytes = 256 * 1024
        public var maxMessagesPerSecond = 50
        /// "VP8" or "H264": what every publisher must send (docs/ROOMS.md, Codecs).
        public var videoCodec = "VP8"
        /// With a secret, joins need an HS256 token signed with it.
        public var secret: String?
        public init() {}
    }

    public typealias ConnectionID = Int

    public enum Action: Sendable, Equatable {
        case send(ConnectionID, ServerMessage)
        /// Close the WebSocket with this code and reason (after what was queued for it).
        case close(ConnectionID, code: UInt16, reason: String)
    }

    struct Participant: Sendable {
        var id: String
        var name: String
        var identity: String
        var room: String
        var connection: ConnectionID
        var canPublish: Bool
        var tracks: [TrackInfo] = []
        var resumeToken: String

        var info: ParticipantInfo { ParticipantInfo(id: id, name: name, tracks: tracks) }
    }

    struct Connection: Sendable {
        var participant: String?
        var iceServers: [String]
        var windowStart: Double
        var messagesInWindow = 0
    }

    public let configuration: Configuration
    let media: any RoomMedia
    /// Room name to its participants' ids, in the order they joined.
    var rooms: [String: [String]] = [:]
    var participants: [String: Participant] = [:]
    var connections: [ConnectionID: Connection] = [:]
    var generator: SystemRandomNumberGenerator

    public init(configuration: Configuration, media: any RoomMedia) {
        self.configuration = configuration
        self.media = media
        generator = SystemRandomNumberGenerator()
    }

    /// A WebSocket opened. `iceServers` are the URLs its `joined` will give (they depend on the Host it used).
    public mutating func connected(_ id: ConnectionID, iceServers: [String], now: Double) {
        connections[id] = Connection(iceServers: iceServers, windowStart: now)
    }

    /// A WebSocket closed (or failed): its participant leaves at once.
    public mutating func disconnected(_ id: ConnectionID) -> [Action] {
        guard let c = connections.removeValue(forKey: id), let pid = c.participant else { return [] }
        return leave(pid, reason: .disconnected)
    }

    /// One text message from a connection.
    public mutating func received(_ text: String, from id: ConnectionID, now: Double) -> [Action] {
        guard var c = connections[id] else { return [] }
        // A fixed one-second window: simple, and a burst at a window's edge is at most twice the limit.
        if now - c.windowStart >= 1 {
            c.windowStart = now
            c.messagesInWindow = 0
        }
        c.messagesInWindow += 1
        connections[id] = c
        if c.messagesInWindow > configuration.maxMessagesPerSecond {
            return [.close(id, code: 1008, reason: "flood")]
        }
        // The WebSocket refuses larger frames itself; this catches a message in several frames, or a socket whose
        // frame limit is set for another endpoint sharing the port.
        if text.utf8.count > configuration.maxMessageBytes {
            return [.close(id, code: 1009, reason: "message over \(configuration.maxMessageBytes) bytes")]
        }
        let message: ClientMessage
        do throws(RoomError) {
            message = try ClientMessage(parsing: text)
        } catch {
            return [.send(id, .error(error))]
        }
        do throws(RoomError) {
            return try handle(message, from: id, now: now)
        } catch {
            var e = error
            e.request = e.request ?? message.type
            return [.send(id, .error(e))]
        }
    }

    mutating func handle(_ message: ClientMessage, from id: ConnectionID, now: Double) throws(RoomError) -> [Action] {
        switch message {
        case .ping(let pong):
            return [.send(id, .pong(pong))]
        case .candidate:
            return []
        case .join(let join):
            return try self.join(join, from: id, now: now)
        default:
            break
        }
        guard let pid = connections[id]?.participant, let p = participants[pid] else {
            throw RoomError(.notJoined, "send join first")
        }
        switch message {
        case .leave:
            connections[id]?.participant = nil
            return leave(pid, reason: .left) + [.close(id, code: 1000, reason: "left")]
        case .publish(let sdp):
            guard p.canPublish else { throw RoomError(.publishNotAllowed, "this token does not allow publishing") }
            let (answer, published) = try media.publish(room: p.room, participant: pid, offer: sdp,
                                                        maxTracks: configuration.maxTracksPerParticipant)
            var actions: [Action] = [.send(id, .publishAnswer(sdp: answer, tracks: published))]
            for t in published where !p.tracks.contains(where: { $0.id == t.id }) {
                let info = TrackInfo(id: t.id, kind: t.kind, muted: false)
                participants[pid]?.tracks.append(info)
                actions += broadcast(p.room, except: pid, .trackPublished(participant: pid, track: info))
            }
            return actions
        case .subscribe(let sdp, let tracks):
            let (answer, refused) = try media.subscribe(room: p.room, participant: pid, offer: sdp, tracks: tracks)
            return [.send(id, .subscribeAnswer(sdp: answer))] + refused.map {
                .send(id, .error(RoomError(.codecUnsupported, "track \($0) is not in a codec your offer takes", request: "subscribe")))
            }
        case .subscription(let track, let enabled, _, _):
            guard media.setSubscription(room: p.room, participant: pid, track: track, enabled: enabled) else {
                throw RoomError(.unknownTrack, "you do not receive track \(track.prefix(80))")
            }
            return []
        case .mute(let track, let muted):
            guard let i = p.tracks.firstIndex(where: { $0.id == track }) else {
                throw RoomError(.unknownTrack, "\(track.prefix(80)) is not one of your tracks")
            }
            guard p.tracks[i].muted != muted else { return [] }
            participants[pid]?.tracks[i].muted = muted
            return broadcast(p.room, except: pid, .trackMuted(participant: pid, track: track, muted: muted))
        case .join, .ping, .candidate:
            return []
        }
    }

    mutating func join(_ join: ClientMessage.Join, from id: ConnectionID, now: Double) throws(RoomError) -> [Action] {
        guard connections[id]?.participant == nil else { throw RoomError(.alreadyJoined, "this connection is in a room already") }
        guard join.version == RoomProtocol.version else {
            throw RoomError(.unsupportedVersion, "this server speaks version \(RoomProtocol.version)")
        }
        guard Self.isValidRoomName(join.room) else {
            throw RoomError(.badRoomName, "room names are 1-64 letters, digits, '-', '_' and '.'")
        }
        var name = join.name.trimmingCharacters(in: .whitespacesAndNewlines)
        var identity: String?
        var canPublish = true
        if let secret = configuration.secret {
            guard let jwt = join.token, !jwt.isEmpty else { throw RoomError(.tokenRequired, "this server's rooms need a token") }
            let token: RoomToken
            do throws(RoomToken.Failure) {
                token = try RoomToken(verifying: jwt, secret: secret, now: Date().timeIntervalSince1970)
            } catch {
                switch error {
                case .expired, .notYetValid: throw RoomError(.tokenExpired, error.description)
                default: throw RoomError(.badToken, error.description)
                }
            }
            guard token.room == join.room else { throw RoomError(.wrongRoom, "the token is for another room") }
            identity = token.identity
            canPublish = token.canPublish
            if name.isEmpty { name = token.identity }
        }
        guard !name.isEmpty, name.count <= 64 else { throw RoomError(.badName, "a display name is 1-64 characters") }
        let members = rooms[join.room] ?? []
        if members.isEmpty, rooms.count >= configuration.maxRooms {
            throw RoomError(.tooManyRooms, "this server has \(configuration.maxRooms) rooms already")
        }
        guard members.count < configuration.maxParticipants else {
            throw RoomError(.roomFull, "\(join.room) has \(configuration.maxParticipants) participants")
        }
        var pid: String
        repeat { pid = randomID(8) } while participants[pid] != nil
        let participant = Participant(id: pid, name: name, identity: identity ?? pid, room: join.room, connection: id,
                                      canPublish: canPublish, resumeToken: randomID(24))
        let others = members.compactMap { participants[$0]?.info }
        participants[pid] = participant
        rooms[join.room, default: []].append(pid)
        connections[id]?.participant = pid
        let joined = ServerMessage.Joined(room: join.room, you: participant.info, canPublish: canPublish, participants: others,
                                          iceServers: connections[id]?.iceServers ?? [], videoCodec: configuration.videoCodec,
                                          resumeToken: participant.resumeToken)
        return [.send(id, .joined(joined))] + broadcast(join.room, except: pid, .participantJoined(participant.info))
    }

    /// The participant leaves its room: media removed, the others told, an empty room forgotten.
    mutating func leave(_ pid: String, reason: ServerMessage.LeaveReason) -> [Action] {
        guard let p = participants.removeValue(forKey: pid) else { return [] }
        media.remove(room: p.room, participant: pid)
        rooms[p.room]?.removeAll { $0 == pid }
        if rooms[p.room]?.isEmpty == true { rooms[p.room] = nil }
        if connections[p.connection]?.participant == pid { connections[p.connection]?.participant = nil }
        return broadcast(p.room, except: pid, .participantLeft(id: pid, reason: reason))
    }

    /// An operator removes a participant: its connection is closed with 4001. Nil when there is no such participant.
    public mutating func remove(room: String, participant pid: String) -> [Action]? {
        guard let p = participants[pid], p.room == room else { return nil }
        return leave(pid, reason: .removed) + [.close(p.connection, code: 4001, reason: "removed")]
    }

    /// The participant's publish transport ended (its ICE consent expired): its tracks are unpublished.
    public mutating func publisherGone(room: String, participant pid: String) -> [Action] {
        guard let p = participants[pid], p.room == room, !p.tracks.isEmpty else { return [] }
        participants[pid]?.tracks = []
        return p.tracks.flatMap { broadcast(p.room, except: pid, .trackUnpublished(participant: pid, track: $0.id)) }
    }

    func broadcast(_ room: String, except: String, _ message: ServerMessage) -> [Action] {
        (rooms[room] ?? []).compactMap { pid in
            guard pid != except, let c = participants[pid]?.connection else { return nil }
            return .send(c, message)
        }
    }

    mutating func randomID(_ length: Int) -> String {
        let alphabet = Array("abcdefghijkmnpqrstuvwxyz23456789")
        return String((0..<length).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] })
    }

    /// The stream name rule: letters, digits, `-`, `_`, `.`; at most 64.
    public static func isValidRoomName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 64 && name.unicodeScalars.allSatisfy {
            $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0))
        }
    }

    // MARK: - What operators see

    public struct RoomSummary: Sendable, Codable, Equatable {
        public var name: String
        public var participants: Int
        public var tracks: Int
    }

    public struct ParticipantSummary: Sendable, Equatable {
        public var id: String
        public var name: String
        public var identity: String
        public var canPublish: Bool
        public var tracks: [TrackInfo]
    }

    public var summaries: [RoomSummary] {
        rooms.map { name, ids in
            RoomSummary(name: name, participants: ids.count, tracks: ids.reduce(0) { $0 + (participants[$1]?.tracks.count ?? 0) })
        }.sorted { $0.name < $1.name }
    }

    public func members(of room: String) -> [ParticipantSummary]? {
        rooms[room].map { ids in ids.compactMap { participants[$0] }.map {
            ParticipantSummary(id: $0.id, name: $0.name, identity: $0.identity, canPublish: $0.canPublish, tracks: $0.tracks)
        } }
    }
}
