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
        /// With a secret, joins need an HS256 token signed with it (and so does playing a broadcast room's streams).
        public var secret: String?
        /// Rooms broadcast from the start: their participants are hub streams (``RoomForwarder/setBroadcast(room:enabled:)``).
        public var broadcast: [String] = []
        /// Seconds a seat is kept after its connection is lost (not closed): the participant may `resume` it, and
        /// the others see nothing. Counted from the last sign of life (see ``livenessWindow``).
        public var grace: Double = 20
        /// Seconds a seat is kept after its page closed the socket with 4000 (it is unloading): a reload resumes.
        public var reloadWindow: Double = 3
        /// How late a lost connection can be noticed: the WebSocket is pinged every 2 s and closed when a ping
        /// goes unanswered until the next, so the last pong can be up to 4 s before the loss is seen.
        public var livenessWindow: Double = 4
        public init() {}
    }

    /// How a connection ended, from its close code (docs/ROOMS.md, Connection).
    public enum Ending: Sendable, Equatable {
        /// Closed with 1000 or 1001 (the client closed it, the tab closed): an immediate leave.
        case closed
        /// Closed by the server (a flood, an oversized message): an immediate leave, told as `disconnected`.
        case dropped
        /// Closed with 4000 by a page that is unloading: the seat is kept for ``Configuration/reloadWindow``.
        case unloading
        /// No close handshake (a reset, a dead network, an unanswered ping): the seat is kept for the grace period.
        case lost
    }

    /// What happened to seats since start, for operators.
    public struct Counters: Sendable, Equatable, Codable {
        /// Seats taken back with a resume token.
        public var resumes = 0
        /// Seats whose hold ran out (the participant did not come back in time).
        public var expired = 0
        /// Seats replaced by a join with the same identity.
        public var replaced = 0
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
        /// Nil while the seat is held for a resume.
        var connection: ConnectionID?
        var canPublish: Bool
        var tracks: [TrackInfo] = []
        var resumeToken: String
        /// When a held seat is given up.
        var heldUntil: Double?

        var info: ParticipantInfo { ParticipantInfo(id: id, name: name, tracks: tracks) }
    }

    struct Connection: Sendable {
        var participant: String?
        var iceServers: [ICEServer]
        var windowStart: Double
        var messagesInWindow = 0
        /// The last message from it.
        var lastHeard: Double
    }

    public let configuration: Configuration
    let media: any RoomMedia
    /// Room name to its participants' ids, in the order they joined.
    var rooms: [String: [String]] = [:]
    var participants: [String: Participant] = [:]
    var connections: [ConnectionID: Connection] = [:]
    /// Resume token to participant id, for seats that exist.
    var resumeTokens: [String: String] = [:]
    /// Resume tokens of participants an operator removed, to when they are forgotten: a resume with one is told
    /// `removed`, so the page stops instead of joining again.
    var removedTokens: [String: Double] = [:]
    public private(set) var counters = Counters()
    /// Each room's active speaker.
    var speakers: [String: SpeakerDetector] = [:]
    var generator: SystemRandomNumberGenerator

    public init(configuration: Configuration, media: any RoomMedia) {
        self.configuration = configuration
        self.media = media
        generator = SystemRandomNumberGenerator()
    }

    /// A WebSocket opened. `iceServers` are what its `joined` will give (they depend on the Host it used, and TURN's
    /// credentials are minted for it).
    public mutating func connected(_ id: ConnectionID, iceServers: [ICEServer], now: Double) {
        connections[id] = Connection(iceServers: iceServers, windowStart: now, lastHeard: now)
    }

    /// A WebSocket ended. Closed cleanly, its participant leaves at once; otherwise its seat is held (the others
    /// are told nothing) until it resumes or the hold runs out (``tick(now:)``).
    public mutating func disconnected(_ id: ConnectionID, _ ending: Ending, now: Double) -> [Action] {
        guard let c = connections.removeValue(forKey: id), let pid = c.participant, participants[pid]?.connection == id else { return [] }
        let until: Double
        switch ending {
        case .closed: return leave(pid, reason: .left)
        case .dropped: return leave(pid, reason: .disconnected)
        case .unloading: until = now + configuration.reloadWindow
        case .lost: until = max(c.lastHeard, now - configuration.livenessWindow) + configuration.grace
        }
        participants[pid]?.connection = nil
        participants[pid]?.heldUntil = until
        return []
    }

    /// Gives up the held seats whose time ran out (the others are told `disconnected`), and forgets old removed
    /// tokens. Called about once a second.
    public mutating func tick(now: Double) -> [Action] {
        removedTokens = removedTokens.filter { $0.value > now }
        let expired = participants.values.filter { ($0.heldUntil ?? .infinity) <= now }.map(\.id).sorted()
        counters.expired += expired.count
        return expired.flatMap { leave($0, reason: .disconnected) }
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
        c.lastHeard = now
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
        case .resume(let version, let token):
            return try resume(version: version, token: token, from: id)
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
        case .publish(let sdp, let sources):
            guard p.canPublish else { throw RoomError(.publishNotAllowed, "this token does not allow publishing") }
            let (answer, published) = try media.publish(room: p.room, participant: pid, offer: sdp,
                                                        maxTracks: configuration.maxTracksPerParticipant)
            var actions: [Action] = [.send(id, .publishAnswer(sdp: answer, tracks: published))]
            // A new publish PeerConnection (a reloaded page) replaced the tracks of the old one.
            for t in p.tracks where !published.contains(where: { $0.id == t.id }) {
                participants[pid]?.tracks.removeAll { $0.id == t.id }
                actions += broadcast(p.room, except: pid, .trackUnpublished(participant: pid, track: t.id))
            }
            for t in published where !p.tracks.contains(where: { $0.id == t.id }) {
                let info = TrackInfo(id: t.id, kind: t.kind, muted: false, source: sources[t.mid])
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
        case .join, .ping, .candidate, .resume:
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
        let rejoining = identity.map { i in members.contains { participants[$0]?.identity == i } } ?? false
        guard members.count < configuration.maxParticipants || rejoining else {
            throw RoomError(.roomFull, "\(join.room) has \(configuration.maxParticipants) participants")
        }
        var actions: [Action] = []
        if let identity, let old = members.first(where: { participants[$0]?.identity == identity }), let p = participants[old] {
            // The same person joined again (another tab, another device): the new join takes the seat's place.
            counters.replaced += 1
            actions += leave(old, reason: .replaced)
            if let c = p.connection { actions.append(.close(c, code: 4003, reason: "replaced")) }
        }
        var pid: String
        repeat { pid = randomID(8) } while participants[pid] != nil
        var token: String
        repeat { token = randomID(24) } while resumeTokens[token] != nil
        let participant = Participant(id: pid, name: name, identity: identity ?? pid, room: join.room, connection: id,
                                      canPublish: canPublish, resumeToken: token)
        participants[pid] = participant
        resumeTokens[token] = pid
        rooms[join.room, default: []].append(pid)
        connections[id]?.participant = pid
        return actions + [.send(id, .joined(snapshot(pid)))] + broadcast(join.room, except: pid, .participantJoined(participant.info))
    }

    /// What `joined` and `resumed` carry: the participant itself, everyone else in the room, and how to connect.
    func snapshot(_ pid: String) -> ServerMessage.Joined {
        let p = participants[pid]!
        let others = (rooms[p.room] ?? []).filter { $0 != pid }.compactMap { participants[$0]?.info }
        return ServerMessage.Joined(room: p.room, you: p.info, canPublish: p.canPublish, participants: others,
                                    iceServers: p.connection.flatMap { connections[$0]?.iceServers } ?? [],
                                    videoCodec: configuration.videoCodec, resumeToken: p.resumeToken,
                                    activeSpeaker: speakers[p.room]?.speaker)
    }

    /// `resume`: a new connection takes a seat back with the token its `joined` gave. The seat may still have its
    /// old connection (not yet seen to be dead): that one is closed with 4002, and nobody else is told anything.
    mutating func resume(version: Int, token: String, from id: ConnectionID) throws(RoomError) -> [Action] {
        guard connections[id]?.participant == nil else { throw RoomError(.alreadyJoined, "this connection is in a room already") }
        guard version == RoomProtocol.version else {
            throw RoomError(.unsupportedVersion, "this server speaks version \(RoomProtocol.version)")
        }
        if removedTokens[token] != nil {
            return [.send(id, .error(RoomError(.removed, "an operator removed you from this room", request: "resume"))),
                    .close(id, code: 4001, reason: "removed")]
        }
        guard let pid = resumeTokens[token], let p = participants[pid] else {
            throw RoomError(.resumeFailed, "no seat for this token (it was given up, or the server restarted): join again")
        }
        var actions: [Action] = []
        if let old = p.connection {
            connections[old]?.participant = nil
            actions.append(.close(old, code: 4002, reason: "resumed on another connection"))
        }
        participants[pid]?.connection = id
        participants[pid]?.heldUntil = nil
        connections[id]?.participant = pid
        counters.resumes += 1
        return actions + [.send(id, .resumed(snapshot(pid)))]
    }

    /// The participant leaves its room: media removed, the others told, an empty room forgotten.
    mutating func leave(_ pid: String, reason: ServerMessage.LeaveReason) -> [Action] {
        guard let p = participants.removeValue(forKey: pid) else { return [] }
        resumeTokens[p.resumeToken] = nil
        media.remove(room: p.room, participant: pid)
        rooms[p.room]?.removeAll { $0 == pid }
        if rooms[p.room]?.isEmpty == true {
            rooms[p.room] = nil
            speakers[p.room] = nil
        }
        if let c = p.connection, connections[c]?.participant == pid { connections[c]?.participant = nil }
        return broadcast(p.room, except: pid, .participantLeft(id: pid, reason: reason))
    }

    /// An operator removes a participant: its connection is closed with 4001, and its resume token answers
    /// `removed` for the next hour. Nil when there is no such participant.
    public mutating func remove(room: String, participant pid: String, now: Double) -> [Action]? {
        guard let p = participants[pid], p.room == room else { return nil }
        if removedTokens.count >= 10_000, let oldest = removedTokens.min(by: { $0.value < $1.value }) { removedTokens[oldest.key] = nil }
        removedTokens[p.resumeToken] = now + 3600
        return leave(pid, reason: .removed) + (p.connection.map { [.close($0, code: 4001, reason: "removed")] } ?? [])
    }

    /// The participant's publish transport ended (its ICE consent expired): its tracks are unpublished.
    public mutating func publisherGone(room: String, participant pid: String) -> [Action] {
        guard let p = participants[pid], p.room == room, !p.tracks.isEmpty else { return [] }
        participants[pid]?.tracks = []
        return p.tracks.flatMap { broadcast(p.room, except: pid, .trackUnpublished(participant: pid, track: $0.id)) }
    }

    /// One window of audio levels (room to participant to mean RFC 6464 level, from the SFU): each room whose active
    /// speaker changed tells everyone in it, the speaker too.
    public mutating func audioLevels(_ levels: [String: [String: Double]], now: Double) -> [Action] {
        var actions: [Action] = []
        for room in rooms.keys.sorted() {
            var detector = speakers[room] ?? SpeakerDetector()
            let change = detector.window(levels[room] ?? [:], now: now)
            speakers[room] = detector
            if let change { actions += broadcast(room, except: "", .activeSpeaker(participant: change)) }
        }
        return actions
    }

    func broadcast(_ room: String, except: String, _ message: ServerMessage) -> [Action] {
        (rooms[room] ?? []).compactMap { pid in
            // A held seat gets no events: its `resumed` snapshot brings it up to date.
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
        /// False while the seat is held for a resume.
        public var connected: Bool
    }

    public var summaries: [RoomSummary] {
        rooms.map { name, ids in
            RoomSummary(name: name, participants: ids.count, tracks: ids.reduce(0) { $0 + (participants[$1]?.tracks.count ?? 0) })
        }.sorted { $0.name < $1.name }
    }

    public func members(of room: String) -> [ParticipantSummary]? {
        rooms[room].map { ids in ids.compactMap { participants[$0] }.map {
            ParticipantSummary(id: $0.id, name: $0.name, identity: $0.identity, canPublish: $0.canPublish, tracks: $0.tracks,
                               connected: $0.connection != nil)
        } }
    }
}
