import Foundation
import Signaling
import Locks
import Testing

/// The rooms' state machine, driven with messages and time, its media side a recording fake: membership, events,
/// every refusal in docs/ROOMS.md, and the limits.
@Suite struct RoomServiceTests {
    /// Records what the service asked of the media side; a publish offer "tracks:N" publishes N tracks.
    final class FakeMedia: RoomMedia {
        let calls = Mutex<[String]>([])
        func publish(room: String, participant: String, offer: String, maxTracks: Int) throws(RoomError)
            -> (answer: String, tracks: [ServerMessage.PublishedTrack]) {
            calls.withLock { $0.append("publish \(room) \(participant)") }
            guard offer.hasPrefix("tracks:"), let n = Int(offer.dropFirst(7)) else { throw RoomError(.badSDP, "not an offer") }
            guard n <= maxTracks else { throw RoomError(.tooManyTracks, "\(n) > \(maxTracks)") }
            return ("answer", (0..<n).map { ServerMessage.PublishedTrack(id: "\(participant)-\($0)", kind: $0 == 0 ? "audio" : "video", mid: "\($0)") })
        }
        func subscribe(room: String, participant: String, offer: String, tracks: [String: String]) throws(RoomError)
            -> (answer: String, refused: [String]) {
            calls.withLock { $0.append("subscribe \(room) \(participant) \(tracks.values.sorted())") }
            return ("sub-answer", tracks.values.filter { $0.hasSuffix("-h264") })
        }
        func setSubscription(room: String, participant: String, track: String, enabled: Bool) -> Bool {
            calls.withLock { $0.append("subscription \(participant) \(track) \(enabled)") }
            return track.contains("-")
        }
        func remove(room: String, participant: String) {
            calls.withLock { $0.append("remove \(room) \(participant)") }
        }
    }

    static let iceServers = [ICEServer(urls: ["stun:127.0.0.1:3478"]),
                             ICEServer(urls: ["turn:127.0.0.1:3478?transport=udp"], username: "u", credential: "c")]
    let media = FakeMedia()
    var service: RoomService
    var now = 0.0

    init(_ change: (inout RoomService.Configuration) -> Void = { _ in }) {
        var c = RoomService.Configuration()
        change(&c)
        service = RoomService(configuration: c, media: media)
    }

    mutating func connect(_ id: Int) { service.connected(id, iceServers: Self.iceServers, now: now) }

    mutating func send(_ id: Int, _ json: String) -> [RoomService.Action] { service.received(json, from: id, now: now) }

    /// Connects `id` and joins `room`; returns the participant id.
    mutating func join(_ id: Int, room: String = "standup", name: String = "p", token: String? = nil) -> String {
        connect(id)
        let tokenField = token.map { #","token":"\#($0)""# } ?? ""
        let actions = send(id, #"{"type":"join","version":1,"room":"\#(room)","name":"\#(name)"\#(tokenField)}"#)
        guard case .send(id, .joined(let j))? = actions.first else { Issue.record("no joined: \(actions)"); return "" }
        return j.you.id
    }

    static func error(_ actions: [RoomService.Action]) -> RoomError.Code? {
        guard actions.count == 1, case .send(_, .error(let e)) = actions[0] else { return nil }
        return e.code
    }

    @Test mutating func joinGivesASnapshotAndTellsTheOthers() throws {
        let a = join(1, name: "alice")
        #expect(send(1, #"{"type":"publish","sdp":"tracks:2"}"#).count == 1)
        connect(2)
        let actions = send(2, #"{"type":"join","version":1,"room":"standup","name":"bob"}"#)
        guard case .send(2, .joined(let j)) = actions[0] else { Issue.record("\(actions)"); return }
        #expect(j.room == "standup" && j.you.name == "bob" && j.canPublish && j.videoCodec == "VP8")
        #expect(j.participants == [ParticipantInfo(id: a, name: "alice", tracks: [TrackInfo(id: "\(a)-0", kind: "audio", muted: false),
                                                                                   TrackInfo(id: "\(a)-1", kind: "video", muted: false)])])
        #expect(j.iceServers == Self.iceServers && j.resumeToken.count == 24 && j.you.id != a)
        #expect(actions.dropFirst() == [.send(1, .participantJoined(ParticipantInfo(id: j.you.id, name: "bob", tracks: [])))])
        // The snapshot's JSON, as a client reads it.
        let json = ServerMessage.joined(j).json
        struct Snapshot: Decodable { var type: String; var iceServers: [ICEServer] }
        let decoded = try JSONDecoder().decode(Snapshot.self, from: Data(json.utf8))
        #expect(decoded.type == "joined" && decoded.iceServers == Self.iceServers, "\(json)")
        #expect(json.contains(#""codecs":{"audio":"opus","video":"VP8"}"#) && json.contains(#""version":1"#))
    }

    @Test mutating func publishAnnouncesTracksToTheOthersOnly() {
        let a = join(1), b = join(2)
        let actions = send(1, #"{"type":"publish","sdp":"tracks:2"}"#)
        #expect(actions.count == 3)
        guard case .send(1, .publishAnswer(let sdp, let tracks)) = actions[0] else { Issue.record("\(actions)"); return }
        #expect(sdp == "answer" && tracks.map(\.id) == ["\(a)-0", "\(a)-1"])
        #expect(actions[1] == .send(2, .trackPublished(participant: a, track: TrackInfo(id: "\(a)-0", kind: "audio", muted: false))))
        #expect(!actions.contains { if case .send(1, .trackPublished) = $0 { true } else { false } })
        _ = b
    }

    @Test mutating func muteIsAnnouncedOnceAndOnlyForYourOwnTracks() {
        let a = join(1), b = join(2)
        _ = send(2, #"{"type":"publish","sdp":"tracks:2"}"#)
        _ = send(1, #"{"type":"publish","sdp":"tracks:1"}"#)
        #expect(send(1, #"{"type":"mute","track":"\#(a)-0","muted":true}"#) == [.send(2, .trackMuted(participant: a, track: "\(a)-0", muted: true))])
        #expect(send(1, #"{"type":"mute","track":"\#(a)-0","muted":true}"#).isEmpty)
        #expect(Self.error(send(1, #"{"type":"mute","track":"\#(b)-0","muted":true}"#)) == .unknownTrack)
        // A late joiner sees the mute in its snapshot.
        connect(3)
        guard case .send(3, .joined(let j))? = send(3, #"{"type":"join","version":1,"room":"standup","name":"c"}"#).first else { return }
        #expect(j.participants.first { $0.id == a }?.tracks.first?.muted == true)
    }

    @Test mutating func subscribeAndSubscriptionGoToTheMedia() {
        let a = join(1), b = join(2)
        _ = send(1, #"{"type":"publish","sdp":"tracks:2"}"#)
        let actions = send(2, #"{"type":"subscribe","sdp":"o","tracks":{"0":"\#(a)-0","1":"\#(a)-h264"}}"#)
        #expect(actions.first == .send(2, .subscribeAnswer(sdp: "sub-answer")))
        #expect(Self.error(Array(actions.dropFirst())) == .codecUnsupported)
        #expect(send(2, #"{"type":"subscription","track":"\#(a)-1","enabled":false,"width":320,"height":240}"#).isEmpty)
        #expect(Self.error(send(2, #"{"type":"subscription","track":"nothing","enabled":false}"#)) == .unknownTrack)
        #expect(media.calls.withLock { $0 }.contains("subscription \(b) \(a)-1 false"))
    }

    @Test mutating func leaveAndDisconnectTellTheOthers() {
        let a = join(1), b = join(2), c = join(3)
        #expect(send(1, #"{"type":"leave"}"#) == [.send(2, .participantLeft(id: a, reason: .left)), .send(3, .participantLeft(id: a, reason: .left)),
                                                   .close(1, code: 1000, reason: "left")])
        #expect(service.disconnected(1, .closed, now: now).isEmpty)
        // A clean close (1000, 1001) is a leave.
        #expect(service.disconnected(2, .closed, now: now) == [.send(3, .participantLeft(id: b, reason: .left))])
        #expect(media.calls.withLock { $0 }.filter { $0.hasPrefix("remove") } == ["remove standup \(a)", "remove standup \(b)"])
        #expect(service.summaries.map { "\($0.name) \($0.participants) \($0.tracks)" } == ["standup 1 0"])
        _ = service.disconnected(3, .closed, now: now)
        #expect(service.summaries.isEmpty, "an empty room is forgotten")
        _ = c
    }

    @Test mutating func anOperatorRemovesAParticipant() {
        let a = join(1), b = join(2)
        #expect(service.remove(room: "other", participant: a, now: now) == nil)
        #expect(service.remove(room: "standup", participant: a, now: now) == [.send(2, .participantLeft(id: a, reason: .removed)),
                                                                               .close(1, code: 4001, reason: "removed")])
        #expect(service.remove(room: "standup", participant: a, now: now) == nil)
        #expect(service.disconnected(1, .lost, now: now).isEmpty)
        _ = b
    }

    /// The token a `joined` gave to `id`'s participant.
    mutating func joinWithToken(_ id: Int, name: String = "p", token: String? = nil) -> (pid: String, resume: String) {
        connect(id)
        let tokenField = token.map { #","token":"\#($0)""# } ?? ""
        let actions = send(id, #"{"type":"join","version":1,"room":"standup","name":"\#(name)"\#(tokenField)}"#)
        guard let j = actions.lazy.compactMap({ if case .send(id, .joined(let j)) = $0 { j } else { nil } }).first else {
            Issue.record("no joined: \(actions)")
            return ("", "")
        }
        return (j.you.id, j.resumeToken)
    }

    mutating func resume(_ id: Int, _ token: String) -> [RoomService.Action] {
        connect(id)
        return send(id, #"{"type":"resume","version":1,"token":"\#(token)"}"#)
    }

    @Test mutating func aLostConnectionsSeatIsHeldAndResumedWithNobodyTold() {
        let (a, token) = joinWithToken(1, name: "alice"), b = join(2)
        _ = send(1, #"{"type":"publish","sdp":"tracks:2"}"#)
        _ = send(1, #"{"type":"mute","track":"\#(a)-0","muted":true}"#)
        now = 10
        #expect(service.disconnected(1, .lost, now: now).isEmpty, "the others see nothing")
        #expect(service.members(of: "standup")?.first?.connected == false)
        // While held, the seat misses events; the resume's snapshot has them.
        _ = send(2, #"{"type":"publish","sdp":"tracks:1"}"#)
        now = 12
        let actions = resume(3, token)
        guard case .send(3, .resumed(let r))? = actions.first, actions.count == 1 else { Issue.record("\(actions)"); return }
        #expect(r.you.id == a && r.resumeToken == token && r.you.tracks.map(\.muted) == [true, false])
        #expect(r.participants.map(\.id) == [b] && r.participants[0].tracks.count == 1)
        #expect(ServerMessage.resumed(r).json.contains(#""type":"resumed""#))
        #expect(service.counters.resumes == 1 && service.members(of: "standup")?.first?.connected == true)
        #expect(!media.calls.withLock { $0 }.contains { $0.hasPrefix("remove") }, "the media stays")
        // It gets events again, and the token still works for the next loss.
        #expect(send(2, #"{"type":"leave"}"#).contains(.send(3, .participantLeft(id: b, reason: .left))))
        #expect(service.tick(now: 100).isEmpty)
    }

    @Test mutating func aHeldSeatIsGivenUpAfterTheGraceCountedFromTheLastSignOfLife() {
        let (a, token) = joinWithToken(1), b = join(2)
        now = 5
        _ = send(1, #"{"type":"ping"}"#)
        now = 6.5
        // Noticed 1.5 s after the last message: held until 5 + 20.
        #expect(service.disconnected(1, .lost, now: now).isEmpty)
        #expect(service.tick(now: 24.9).isEmpty)
        #expect(service.tick(now: 25) == [.send(2, .participantLeft(id: a, reason: .disconnected))])
        #expect(service.counters.expired == 1)
        // Too late: the page must join again.
        #expect(Self.error(resume(3, token)) == .resumeFailed)
        // A loss noticed long after the last message (a client that never pings) still gets the grace, less the
        // time a dead connection takes to be noticed.
        let (c, _) = joinWithToken(4)
        now = 100
        _ = service.disconnected(4, .lost, now: now)
        #expect(service.tick(now: 115.9).isEmpty && service.tick(now: 116) == [.send(2, .participantLeft(id: c, reason: .disconnected))])
        _ = b
    }

    @Test mutating func anUnloadingPageHasTheReloadWindow() {
        let (a, token) = joinWithToken(1), b = join(2)
        now = 1
        #expect(service.disconnected(1, .unloading, now: now).isEmpty)
        #expect(service.tick(now: 3.9).isEmpty && service.tick(now: 4) == [.send(2, .participantLeft(id: a, reason: .disconnected))])
        // Within the window, the reloaded page resumes.
        let (c, t2) = joinWithToken(3)
        now = 10
        _ = service.disconnected(3, .unloading, now: now)
        now = 11
        guard case .send(4, .resumed(let r))? = resume(4, t2).first else { Issue.record("no resumed"); return }
        #expect(r.you.id == c)
        _ = (token, b)
    }

    @Test mutating func aResumeWhileTheOldConnectionLivesClosesIt() {
        let (a, token) = joinWithToken(1), b = join(2)
        let actions = resume(3, token)
        #expect(actions.first == .close(1, code: 4002, reason: "resumed on another connection"))
        guard case .send(3, .resumed(let r))? = actions.last else { Issue.record("\(actions)"); return }
        #expect(r.you.id == a)
        // The old connection's end is no loss: the seat is not held, nothing is told.
        #expect(service.disconnected(1, .lost, now: now).isEmpty && service.tick(now: 1000).isEmpty)
        #expect(service.members(of: "standup")?.map(\.connected) == [true, true])
        // A second resume on a connection that is in a room is refused.
        #expect(Self.error(send(3, #"{"type":"resume","version":1,"token":"\#(token)"}"#)) == .alreadyJoined)
        #expect(Self.error(resume(5, "nonsense")) == .resumeFailed)
        #expect(Self.error(resume(6, String(repeating: "x", count: 24))) == .resumeFailed)
        _ = b
    }

    @Test mutating func aRemovedParticipantStaysOut() {
        let (a, token) = joinWithToken(1), b = join(2)
        now = 50
        _ = service.disconnected(1, .lost, now: now)
        // Removed while held: no connection to close, the others told.
        #expect(service.remove(room: "standup", participant: a, now: now) == [.send(2, .participantLeft(id: a, reason: .removed))])
        #expect(resume(3, token) == [.send(3, .error(RoomError(.removed, "an operator removed you from this room", request: "resume"))),
                                     .close(3, code: 4001, reason: "removed")])
        // An hour later the token is forgotten, and is just unknown.
        _ = service.tick(now: now + 3601)
        #expect(Self.error(resume(4, token)) == .resumeFailed)
        _ = b
    }

    @Test mutating func aJoinWithTheSameIdentityReplacesTheSeat() {
        var s = RoomServiceTests { $0.secret = "k"; $0.maxParticipants = 2 }
        let exp = Int(Date().timeIntervalSince1970) + 60
        let ann = RoomToken(room: "standup", identity: "ann", expires: exp, canPublish: true).signed(secret: "k")
        let bob = RoomToken(room: "standup", identity: "bob", expires: exp, canPublish: true).signed(secret: "k")
        let (a, oldToken) = s.joinWithToken(1, token: ann), (b, _) = s.joinWithToken(2, token: bob)
        // The room is full, but ann may come in again: her old seat goes.
        s.connect(3)
        let actions = s.send(3, #"{"type":"join","version":1,"room":"standup","name":"","token":"\#(ann)"}"#)
        #expect(actions.prefix(2) == [.send(2, .participantLeft(id: a, reason: .replaced)), .close(1, code: 4003, reason: "replaced")])
        guard case .send(3, .joined(let j))? = actions.dropFirst(2).first else { Issue.record("\(actions)"); return }
        #expect(j.you.id != a && j.participants.map(\.id) == [b])
        #expect(actions.last == .send(2, .participantJoined(j.you)))
        #expect(s.service.counters.replaced == 1)
        #expect(Self.error(s.resume(4, oldToken)) == .resumeFailed)
    }

    @Test mutating func aPublisherWhoseTransportEndedLosesItsTracks() {
        let a = join(1), b = join(2)
        _ = send(1, #"{"type":"publish","sdp":"tracks:2"}"#)
        #expect(service.publisherGone(room: "standup", participant: a) == [.send(2, .trackUnpublished(participant: a, track: "\(a)-0")),
                                                                            .send(2, .trackUnpublished(participant: a, track: "\(a)-1"))])
        #expect(service.publisherGone(room: "standup", participant: a).isEmpty)
        _ = b
    }

    @Test mutating func pingIsEchoed() {
        connect(1)
        let actions = send(1, #"{"type":"ping","t":12.5,"id":"x"}"#)
        guard case .send(1, .pong(let v)) = actions.first else { Issue.record("\(actions)"); return }
        #expect(ServerMessage.pong(v).json == #"{"id":"x","t":12.5,"type":"pong"}"#)
        #expect(send(1, #"{"type":"candidate","candidate":"candidate:1 1 udp 1 10.0.0.1 9 typ host"}"#).isEmpty)
    }

    @Test(arguments: [
        ("nonsense", RoomError.Code.malformed),
        ("[1,2]", .malformed),
        (#"{"room":"x"}"#, .malformed),
        (#"{"type":7}"#, .malformed),
        (#"{"type":"dance"}"#, .unknownType),
        (#"{"type":"publish","sdp":"tracks:1"}"#, .notJoined),
        (#"{"type":"mute","track":"a","muted":true}"#, .notJoined),
        (#"{"type":"join","version":2,"room":"r","name":"n"}"#, .unsupportedVersion),
        (#"{"type":"join","version":1,"room":"a/b","name":"n"}"#, .badRoomName),
        (#"{"type":"join","version":1,"room":"","name":"n"}"#, .badRoomName),
        (#"{"type":"join","version":1,"room":"r","name":"  "}"#, .badName),
        (#"{"type":"join","version":1,"room":"r"}"#, .malformed),
        (#"{"type":"join","version":"1","room":"r","name":"n"}"#, .malformed),
    ])
    mutating func badMessagesGetANamedErrorAndTheConnectionStays(message: String, code: RoomError.Code) {
        connect(1)
        let actions = send(1, message)
        #expect(Self.error(actions) == code, "\(message): \(actions)")
        // Still usable afterwards.
        #expect(send(1, #"{"type":"join","version":1,"room":"r","name":"n"}"#).count == 1)
        #expect(Self.error(send(1, #"{"type":"join","version":1,"room":"r","name":"n"}"#)) == .alreadyJoined)
    }

    @Test mutating func theErrorNamesTheRequest() {
        connect(1)
        guard case .send(1, .error(let e))? = send(1, #"{"type":"publish","sdp":"x"}"#).first else { return }
        #expect(e.request == "publish")
        #expect(ServerMessage.error(e).json == #"{"code":"notJoined","message":"send join first","request":"publish","type":"error"}"#)
    }

    @Test mutating func aFullRoomAndTooManyRoomsAreRefused() {
        var s = RoomServiceTests { $0.maxParticipants = 2; $0.maxRooms = 1 }
        _ = s.join(1)
        _ = s.join(2)
        s.connect(3)
        #expect(Self.error(s.send(3, #"{"type":"join","version":1,"room":"standup","name":"n"}"#)) == .roomFull)
        #expect(Self.error(s.send(3, #"{"type":"join","version":1,"room":"other","name":"n"}"#)) == .tooManyRooms)
    }

    @Test mutating func tooManyTracksAreRefused() {
        var s = RoomServiceTests { $0.maxTracksPerParticipant = 2 }
        _ = s.join(1)
        #expect(Self.error(s.send(1, #"{"type":"publish","sdp":"tracks:3"}"#)) == .tooManyTracks)
        #expect(Self.error(s.send(1, #"{"type":"publish","sdp":"garbage"}"#)) == .badSDP)
    }

    @Test mutating func aFloodClosesTheConnection() {
        var s = RoomServiceTests { $0.maxMessagesPerSecond = 5 }
        s.connect(1)
        for _ in 0..<5 { #expect(s.send(1, #"{"type":"ping"}"#).count == 1) }
        #expect(s.send(1, #"{"type":"ping"}"#) == [.close(1, code: 1008, reason: "flood")])
        // A new second is a new window.
        s.now = 1.5
        #expect(s.send(1, #"{"type":"ping"}"#).count == 1)
    }

    @Test mutating func anOversizedMessageClosesTheConnection() {
        var s = RoomServiceTests { $0.maxMessageBytes = 4096 }
        s.connect(1)
        let big = #"{"type":"ping","pad":""# + String(repeating: "x", count: 4096) + #""}"#
        #expect(s.send(1, big) == [.close(1, code: 1009, reason: "message over 4096 bytes")])
    }

    @Test mutating func tokensAreCheckedWhenThereIsASecret() {
        var s = RoomServiceTests { $0.secret = "k" }
        let now = Int(Date().timeIntervalSince1970)
        func t(_ room: String = "standup", exp: Int = now + 60, publish: Bool = true, secret: String = "k") -> String {
            RoomToken(room: room, identity: "ann", expires: exp, canPublish: publish).signed(secret: secret)
        }
        for (token, code) in [(nil, RoomError.Code.tokenRequired), ("x.y.z", .badToken), (t(secret: "other"), .badToken),
                              (t(exp: now - 60), .tokenExpired), (t("elsewhere"), .wrongRoom),
                              (RoomTokenTests.b64(#"{"alg":"none"}"#) + "." + RoomTokenTests.b64(#"{"room":"standup","sub":"a","exp":\#(now + 60)}"#) + ".", .badToken)] {
            s.connect(9)
            let field = token.map { #","token":"\#($0)""# } ?? ""
            #expect(Self.error(s.send(9, #"{"type":"join","version":1,"room":"standup","name":"n"\#(field)}"#)) == code, "\(code)")
        }
        // The identity comes from the token; the name defaults to it.
        s.connect(1)
        guard case .send(1, .joined(let j))? = s.send(1, #"{"type":"join","version":1,"room":"standup","name":"","token":"\#(t(publish: false))"}"#).first else {
            Issue.record("not joined"); return
        }
        #expect(j.you.name == "ann" && !j.canPublish)
        #expect(Self.error(s.send(1, #"{"type":"publish","sdp":"tracks:1"}"#)) == .publishNotAllowed)
        #expect(s.service.members(of: "standup")?.first?.identity == "ann")
    }

    @Test func roomNamesFollowTheStreamNameRule() {
        for ok in ["a", "Stand-up_2.b", String(repeating: "x", count: 64)] { #expect(RoomService.isValidRoomName(ok)) }
        for bad in ["", "a b", "a/b", "é", "a?x", String(repeating: "x", count: 65)] { #expect(!RoomService.isValidRoomName(bad)) }
    }

    @Test mutating func theActiveSpeakerIsToldToTheWholeRoomAndInTheSnapshot() {
        let a = join(1), b = join(2)
        let other = join(3, room: "other")
        #expect(service.audioLevels(["standup": [a: 10]], now: 0).isEmpty)
        let actions = service.audioLevels(["standup": [a: 10], "other": [other: 127]], now: 0.2)
        #expect(actions == [.send(1, .activeSpeaker(participant: a)), .send(2, .activeSpeaker(participant: a))])
        #expect(ServerMessage.activeSpeaker(participant: a).json == #"{"participant":"\#(a)","type":"activeSpeaker"}"#)
        #expect(ServerMessage.activeSpeaker(participant: nil).json == #"{"participant":null,"type":"activeSpeaker"}"#)
        connect(4)
        let late = send(4, #"{"type":"join","version":1,"room":"standup","name":"late"}"#)
        guard case .send(4, .joined(let j))? = late.first else { Issue.record("\(late)"); return }
        #expect(j.activeSpeaker == a && ServerMessage.joined(j).json.contains(#""activeSpeaker":"\#(a)""#))
        _ = b
    }

    @Test mutating func aScreenShareIsATrackAddedAndEndedByRenegotiating() {
        let a = join(1), b = join(2)
        _ = send(1, #"{"type":"publish","sdp":"tracks:2"}"#)
        // The same publish PeerConnection offers a third sending section, labelled as the screen.
        let added = send(1, #"{"type":"publish","sdp":"tracks:3","sources":{"2":"screen"}}"#)
        #expect(added.dropFirst() == [.send(2, .trackPublished(participant: a, track: TrackInfo(id: "\(a)-2", kind: "video", muted: false, source: "screen")))])
        #expect(ServerMessage.trackPublished(participant: a, track: TrackInfo(id: "x", kind: "video", muted: false, source: "screen")).json
                    .contains(#""source":"screen""#))
        #expect(TrackInfo(id: "x", kind: "audio", muted: false).source == "microphone")
        // Sharing stops: the section goes inactive, the track ends.
        #expect(send(1, #"{"type":"publish","sdp":"tracks:2"}"#).dropFirst() == [.send(2, .trackUnpublished(participant: a, track: "\(a)-2"))])
        #expect(Self.error(send(1, #"{"type":"publish","sdp":"tracks:3","sources":{"2":"hologram"}}"#)) == .malformed)
        _ = b
    }
}
