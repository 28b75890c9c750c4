import FuzzSupport
import Synchronization
@testable import Signaling

/// The rooms' state machine (`RoomService`) driven by four WebSocket connections: they connect, send any message,
/// end in each of the four ways, and time passes. A message may say `$RESUME` for the newest resume token given out
/// and `$TRACK` for the newest track published, so resumes and subscriptions are reached. Its media side is a fake
/// that keeps what was published. After every step:
/// - each participant is in one room, once, and each room lists only its own participants;
/// - a participant's connection and the connection's participant agree, and no message goes to a closed connection;
/// - media is held only for participants who are still there (none left behind by a leave, a drop or a hold that ran
///   out), and the limits on rooms and participants hold.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = UnsafeBufferPointer(start: data, count: size)[...]
    let media = Media()
    var configuration = RoomService.Configuration()
    configuration.maxRooms = 3
    configuration.maxParticipants = 3
    var service = RoomService(configuration: configuration, media: media)
    var open: Set<Int> = []
    var now = 1000.0
    var resume = "none"
    var track = "none"
    while let op = input.popFirst() {
        let id = Int(op >> 4 & 3)
        var actions: [RoomService.Action] = []
        switch op & 7 {
        case 0:
            if !open.contains(id) {
                service.connected(id, iceServers: [ICEServer(urls: ["stun:127.0.0.1:3478"])], now: now)
                open.insert(id)
            }
        case 1, 2, 3:
            let length = Int(input.popFirst() ?? 0)
            let text = String(decoding: input.prefix(length), as: UTF8.self)
                .replacingOccurrences(of: "$RESUME", with: resume).replacingOccurrences(of: "$TRACK", with: track)
            input = input.dropFirst(length)
            actions = service.received(text, from: id, now: now)
        case 4:
            let endings: [RoomService.Ending] = [.closed, .dropped, .unloading, .lost]
            actions = service.disconnected(id, endings[Int(op >> 6)], now: now)
            open.remove(id)
        case 5:
            now += Double(op >> 6) * 7 + 0.5
            actions = service.tick(now: now)
        case 6:
            // An operator removes a participant.
            if let pid = service.participants.keys.sorted().first, let room = service.participants[pid]?.room {
                actions = service.remove(room: room, participant: pid, now: now) ?? []
            }
        default:
            if let pid = service.participants.keys.sorted().last, let room = service.participants[pid]?.room {
                actions = service.publisherGone(room: room, participant: pid)
            }
        }
        // What the endpoint does with the actions: sends to open connections, closes (the close comes back as
        // `dropped`). Tokens and tracks given out are remembered for later messages.
        var closing: [Int] = []
        for action in actions {
            switch action {
            case .send(let to, let message):
                check(open.contains(to), "\(message) sent to connection \(to), which is not open")
                switch message {
                case .joined(let j), .resumed(let j): resume = j.resumeToken
                case .trackPublished(_, let t): track = t.id
                default: break
                }
            case .close(let to, _, _):
                check(open.contains(to), "connection \(to) closed twice")
                closing.append(to)
            }
        }
        for c in closing where open.contains(c) {
            open.remove(c)
            for case .send(let to, let message) in service.disconnected(c, .dropped, now: now) {
                check(open.contains(to), "\(message) sent to connection \(to), which is not open")
            }
        }
        invariants(service, media, open)
    }
    return 0
}

func invariants(_ s: RoomService, _ media: Media, _ open: Set<Int>) {
    var seen: Set<String> = []
    check(s.rooms.count <= s.configuration.maxRooms, "\(s.rooms.count) rooms")
    for (room, ids) in s.rooms {
        check(!ids.isEmpty, "room \(room) is empty but kept")
        check(ids.count <= s.configuration.maxParticipants, "room \(room) has \(ids.count) participants")
        for pid in ids {
            check(seen.insert(pid).inserted, "participant \(pid) is listed twice")
            check(s.participants[pid]?.room == room, "\(pid) is listed in \(room) but is in \(String(describing: s.participants[pid]?.room))")
        }
    }
    check(seen.count == s.participants.count, "\(s.participants.count) participants, \(seen.count) in rooms")
    for (pid, p) in s.participants {
        if let c = p.connection {
            check(open.contains(c) && s.connections[c]?.participant == pid, "\(pid) on connection \(c), which is not its")
        } else {
            check(p.heldUntil != nil, "\(pid) has no connection and no hold")
        }
        check(s.resumeTokens[p.resumeToken] == pid, "\(pid)'s resume token does not name it")
    }
    check(s.resumeTokens.count == s.participants.count, "\(s.resumeTokens.count) resume tokens for \(s.participants.count) participants")
    for c in s.connections.keys { check(open.contains(c), "connection \(c) kept after it ended") }
    for key in media.live.withLock({ $0 }) {
        check(s.participants[key.participant]?.room == key.room, "media of \(key.participant) in \(key.room) left behind")
    }
}

/// The media side: publishing an offer "tracks:N" gives N tracks; what is published stays until `remove`.
final class Media: RoomMedia {
    struct Key: Hashable { var room: String; var participant: String }
    let live = Mutex<Set<Key>>([])
    func publish(room: String, participant: String, offer: String, maxTracks: Int) throws(RoomError)
        -> (answer: String, tracks: [ServerMessage.PublishedTrack]) {
        guard offer.hasPrefix("tracks:"), let n = Int(offer.dropFirst(7)), (1...9).contains(n) else { throw RoomError(.badSDP, "not an offer") }
        guard n <= maxTracks else { throw RoomError(.tooManyTracks, "\(n) > \(maxTracks)") }
        live.withLock { _ = $0.insert(Key(room: room, participant: participant)) }
        return ("answer", (0..<n).map { ServerMessage.PublishedTrack(id: "\(participant)-\($0)", kind: $0 == 0 ? "audio" : "video", mid: "\($0)") })
    }
    func subscribe(room: String, participant: String, offer: String, tracks: [String: String]) throws(RoomError)
        -> (answer: String, refused: [String]) {
        guard offer == "sub" else { throw RoomError(.badSDP, "not an offer") }
        live.withLock { _ = $0.insert(Key(room: room, participant: participant)) }
        return ("sub-answer", [])
    }
    func setSubscription(room: String, participant: String, track: String, enabled: Bool) -> Bool { track.contains("-") }
    func remove(room: String, participant: String) {
        live.withLock { _ = $0.remove(Key(room: room, participant: participant)) }
    }
}
