import Foundation
import Signaling
import Testing
import TestSupport

/// The rooms' WebSocket at `/ws` and their operator API, over real sockets with offers Chromium wrote (no browser
/// runs here): joining, publishing and subscribing with real SDP, renegotiation, and every kind of bad input,
/// each followed by a check that the participants already in the room were not affected.
@Suite(.serialized, .timeLimit(.minutes(3))) struct RoomEndpointTests {
    static let publishOffer = WHIPTests.offer
    static let subscribeOffer = WHIPTests.playOffer

    static func object(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not an object: \(text)")
    }

    static func json(_ value: [String: Any]) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: value), as: UTF8.self)
    }

    /// The next message of `type` (others, such as events, are skipped); fails after `timeout` without a message.
    static func next(_ c: WebSocketTestClient, _ type: String, timeout: Duration = .seconds(5)) async throws -> [String: Any] {
        while true {
            let o = try object(try await c.text(timeout: timeout))
            if o["type"] as? String == type { return o }
        }
    }

    /// Nothing but the pong reaches `c` for a ping sent now: no event was waiting for it.
    static func nothingPending(_ c: WebSocketTestClient) async throws -> Bool {
        c.send(#"{"type":"ping","check":true}"#)
        let o = try object(try await c.text())
        return o["type"] as? String == "pong" && o["check"] as? Bool == true
    }

    static func join(_ server: TestServer, room: String = "standup", name: String, token: String? = nil) async throws
        -> (WebSocketTestClient, [String: Any]) {
        let c = try await WebSocketTestClient.connect(port: server.ports.http, path: "/ws")
        var msg: [String: Any] = ["type": "join", "version": 1, "room": room, "name": name]
        if let token { msg["token"] = token }
        c.send(json(msg))
        return (c, try object(try await c.text()))
    }

    static func errorCode(_ c: WebSocketTestClient) async throws -> String? {
        let o = try object(try await c.text())
        return o["type"] as? String == "error" ? o["code"] as? String : "not an error: \(o)"
    }

    @Test func publishSubscribeAndRenegotiateWithChromiumOffers() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let (alice, joinedA) = try await Self.join(server, name: "alice")
        defer { alice.close() }
        #expect(joinedA["type"] as? String == "joined", "\(joinedA)")
        let you = try #require(joinedA["you"] as? [String: Any])
        let a = try #require(you["id"] as? String)
        let ice = joinedA["iceServers"] as? [[String: Any]]
        #expect((ice?.first?["urls"] as? [String])?.first == "stun:127.0.0.1:\(server.ports.stunUDP)")
        alice.send(Self.json(["type": "publish", "sdp": Self.publishOffer]))
        let published = try await Self.next(alice, "publishAnswer")
        let tracks = try #require(published["tracks"] as? [[String: String]])
        #expect(tracks.map { $0["kind"] ?? "" } == ["audio", "video"] && tracks.map { $0["id"] ?? "" } == ["\(a)-0", "\(a)-1"])
        #expect((published["sdp"] as? String)?.contains("a=recvonly") == true)

        // A late joiner finds alice's tracks in its snapshot and subscribes to them with Chromium's recvonly offer.
        let (bob, joinedB) = try await Self.join(server, name: "bob")
        defer { bob.close() }
        let others = try #require(joinedB["participants"] as? [[String: Any]])
        #expect(others.count == 1 && others.first?["id"] as? String == a && (others.first?["tracks"] as? [Any])?.count == 2)
        bob.send(Self.json(["type": "subscribe", "sdp": Self.subscribeOffer, "tracks": ["0": "\(a)-0", "1": "\(a)-1"]]))
        let answer = try #require(try await Self.next(bob, "subscribeAnswer")["sdp"] as? String)
        #expect(answer.components(separatedBy: "a=sendonly").count == 3, "\(answer)")
        #expect(answer.contains("a=msid:\(a) \(a)-1") && answer.contains("a=ssrc-group:FID"))
        // The same offer again: the same credentials and SSRCs (renegotiation keeps the transport and the tracks).
        bob.send(Self.json(["type": "subscribe", "sdp": Self.subscribeOffer, "tracks": ["0": "\(a)-0", "1": "\(a)-1"]]))
        let again = try #require(try await Self.next(bob, "subscribeAnswer")["sdp"] as? String)
        let lines = { (s: String) in s.split(separator: "\r\n").filter { $0.hasPrefix("a=ssrc:") || $0.hasPrefix("a=ice-ufrag") }.sorted() }
        #expect(lines(again) == lines(answer) && !lines(answer).isEmpty)
        // Stopping the video: its section is answered inactive, the audio stays.
        bob.send(Self.json(["type": "subscribe", "sdp": Self.subscribeOffer, "tracks": ["0": "\(a)-0"]]))
        let fewer = try #require(try await Self.next(bob, "subscribeAnswer")["sdp"] as? String)
        #expect(fewer.components(separatedBy: "a=sendonly").count == 2 && fewer.contains("a=inactive"))
        // The operator API shows both, and what bob receives.
        let room = try Self.object(try await HTTPGet.fetch(port: server.ports.http, "/api/v1/rooms/standup").text)
        let members = try #require(room["participants"] as? [[String: Any]])
        #expect(members.count == 2)
        let bobEntry = try #require(members.first { $0["name"] as? String == "bob" })
        #expect((bobEntry["receiving"] as? [[String: Any]])?.map { $0["track"] as? String } == ["\(a)-0"])
        let list = try await HTTPGet.fetch(port: server.ports.http, "/api/v1/rooms").text
        #expect(list.contains(#""participants":2"#) && list.contains(#""tracks":2"#), "\(list)")
        let metrics = try await HTTPGet.fetch(port: server.ports.http, "/metrics").text
        #expect(metrics.contains("liveswarm_rooms 1") && metrics.contains("liveswarm_room_participants 2")
                && metrics.contains("liveswarm_room_tracks 2"), "\(metrics.split(separator: "\n").filter { $0.contains("room") })")
        // Alice leaves: bob is told at once.
        alice.send(#"{"type":"leave"}"#)
        let left = try await Self.next(bob, "participantLeft")
        #expect(left["participant"] as? String == a && left["reason"] as? String == "left")
        var event = await alice.next()
        while case .text? = event { event = await alice.next() }  // bob's arrival, unread until now
        #expect(event == .closed(1000))
    }

    @Test func badInputGetsNamedErrorsAndCostsOthersNothing() async throws {
        let server = try await TestServer.start { $0.rooms.maxParticipants = 3; $0.rooms.maxMessagesPerSecond = 20 }
        defer { Task { await server.stop() } }
        let (alice, joinedA) = try await Self.join(server, name: "alice")
        defer { alice.close() }
        let a = try #require((joinedA["you"] as? [String: Any])?["id"] as? String)
        alice.send(Self.json(["type": "publish", "sdp": Self.publishOffer]))
        _ = try await Self.next(alice, "publishAnswer")

        let bad = try await WebSocketTestClient.connect(port: server.ports.http, path: "/ws")
        defer { bad.close() }
        for (message, code) in [("{not json", "malformed"), (#"{"type":"teleport"}"#, "unknownType"),
                                (Self.json(["type": "publish", "sdp": Self.publishOffer]), "notJoined"),
                                (Self.json(["type": "join", "version": 1, "room": "../etc", "name": "x"]), "badRoomName")] {
            bad.send(message)
            #expect(try await Self.errorCode(bad) == code, "\(message.prefix(40))")
        }
        bad.send(Self.json(["type": "join", "version": 1, "room": "standup", "name": "mallory"]))
        let joinedBad = try Self.object(try await bad.text())
        #expect(joinedBad["type"] as? String == "joined")
        _ = try await Self.next(alice, "participantJoined")
        for (sdp, code) in [("garbage", "badSDP"), ("v=0\r\n", "badSDP"), (Self.subscribeOffer, "badSDP")] {
            bad.send(Self.json(["type": "publish", "sdp": sdp]))
            #expect(try await Self.errorCode(bad) == code)
        }
        bad.send(Self.json(["type": "subscribe", "sdp": "m=garbage", "tracks": ["0": "\(a)-0"]]))
        #expect(try await Self.errorCode(bad) == "badSDP")
        bad.send(Self.json(["type": "mute", "track": "\(a)-0", "muted": true]))
        #expect(try await Self.errorCode(bad) == "unknownTrack", "someone else's track")

        // A full room (alice, mallory, and one more).
        let (carol, _) = try await Self.join(server, name: "carol")
        defer { carol.close() }
        let (dave, full) = try await Self.join(server, name: "dave")
        defer { dave.close() }
        #expect(full["code"] as? String == "roomFull")

        // Oversized: closed with 1009. A flood: closed with 1008.
        bad.send(String(repeating: "x", count: RoomService.Configuration().maxMessageBytes + 1))
        var event = await bad.next()
        while case .text? = event { event = await bad.next() }
        #expect(event == .closed(1009))
        let left = try await Self.next(alice, "participantLeft")
        #expect(left["reason"] as? String == "disconnected")
        let flood = try await WebSocketTestClient.connect(port: server.ports.http, path: "/ws")
        defer { flood.close() }
        for _ in 0..<40 { flood.send(#"{"type":"ping"}"#) }
        var closed: UInt16?? = nil
        while closed == nil, let e = await flood.next() { if case .closed(let c) = e { closed = c } }
        #expect(closed == 1008)

        // Afterwards alice is still there with her tracks, and answers pings.
        alice.send(#"{"type":"ping","n":1}"#)
        #expect(try await Self.next(alice, "pong")["n"] as? Int == 1)
        let room = try Self.object(try await HTTPGet.fetch(port: server.ports.http, "/api/v1/rooms/standup").text)
        let members = try #require(room["participants"] as? [[String: Any]])
        #expect(Set(members.compactMap { $0["name"] as? String }) == ["alice", "carol"])
        #expect((members.first { $0["id"] as? String == a }?["tracks"] as? [Any])?.count == 2)
    }

    @Test func tokensAreCheckedWhenTheServerHasARoomSecret() async throws {
        let server = try await TestServer.start { $0.rooms.secret = "room-secret" }
        defer { Task { await server.stop() } }
        let now = Int(Date().timeIntervalSince1970)
        func token(room: String = "standup", exp: Int = now + 600, publish: Bool = true, secret: String = "room-secret") -> String {
            RoomToken(room: room, identity: "ann", expires: exp, canPublish: publish).signed(secret: secret)
        }
        // alg "none", unsigned: the classic forgery.
        let b64 = { (s: String) in Data(s.utf8).base64EncodedString().replacingOccurrences(of: "=", with: "") }
        let none = b64(#"{"alg":"none","typ":"JWT"}"#) + "." + b64(#"{"room":"standup","sub":"ann","exp":\#(now + 600)}"#) + "."
        for (t, code) in [(nil, "tokenRequired"), (none, "badToken"), (token(secret: "guess"), "badToken"),
                          (token(exp: now - 60), "tokenExpired"), (token(room: "boardroom"), "wrongRoom")] {
            let (c, reply) = try await Self.join(server, name: "x", token: t)
            #expect(reply["code"] as? String == code)
            c.close()
        }
        let (viewer, joined) = try await Self.join(server, name: "", token: token(publish: false))
        defer { viewer.close() }
        #expect((joined["you"] as? [String: Any])?["name"] as? String == "ann")
        #expect((joined["you"] as? [String: Any])?["canPublish"] as? Bool == false)
        viewer.send(Self.json(["type": "publish", "sdp": Self.publishOffer]))
        #expect(try await Self.errorCode(viewer) == "publishNotAllowed")

        // Ann joins again (another tab): her old seat is replaced, its socket closed with 4003, the others told.
        let bobToken = RoomToken(room: "standup", identity: "bob", expires: now + 600).signed(secret: "room-secret")
        let (bob, _) = try await Self.join(server, name: "", token: bobToken)
        defer { bob.close() }
        let (again, rejoined) = try await Self.join(server, name: "", token: token())
        defer { again.close() }
        #expect(rejoined["type"] as? String == "joined" && (rejoined["you"] as? [String: Any])?["id"] as? String != (joined["you"] as? [String: Any])?["id"] as? String)
        var event = await viewer.next()
        while case .text? = event { event = await viewer.next() }
        #expect(event == .closed(4003))
        let replaced = try await Self.next(bob, "participantLeft")
        #expect(replaced["reason"] as? String == "replaced")
    }

    @Test func removingAParticipantNeedsTheAPIToken() async throws {
        for token in [nil, "op-token"] as [String?] {
            let server = try await TestServer.start { $0.apiToken = token }
            defer { Task { await server.stop() } }
            let (alice, joined) = try await Self.join(server, name: "alice")
            defer { alice.close() }
            let (bob, _) = try await Self.join(server, name: "bob")
            defer { bob.close() }
            let a = try #require((joined["you"] as? [String: Any])?["id"] as? String)
            let path = "/api/v1/rooms/standup/participants/\(a)"
            let anonymous = try await HTTPGet.fetch(port: server.ports.http, path, method: "DELETE")
            let wrong = try await HTTPGet.fetch(port: server.ports.http, path, method: "DELETE", headers: ["Authorization": "Bearer nope"])
            guard let token else {
                // No token configured: the route is off for everyone.
                #expect(anonymous.status == 403 && wrong.status == 403, "\(anonymous.text)")
                continue
            }
            #expect(anonymous.status == 401 && wrong.status == 401 && anonymous.headers["www-authenticate"] == "Bearer")
            let auth = ["Authorization": "Bearer \(token)"]
            #expect(try await HTTPGet.fetch(port: server.ports.http, "/api/v1/rooms/standup/participants/nobody", method: "DELETE",
                                            headers: auth).status == 404)
            #expect(try await HTTPGet.fetch(port: server.ports.http, path, method: "DELETE", headers: auth).status == 204)
            var event = await alice.next()
            while case .text? = event { event = await alice.next() }
            #expect(event == .closed(4001))
            let left = try await Self.next(bob, "participantLeft")
            #expect(left["participant"] as? String == a && left["reason"] as? String == "removed")
        }
    }

    /// How a connection ends decides the seat (docs/ROOMS.md, Connection): a connection lost without a close keeps
    /// its seat, which `resume` takes back on a new connection with nobody told; a close with 4000 (a page
    /// unloading) keeps it for the reload window; a close with 1000 leaves at once; a seat not taken back within the
    /// grace is given up, and the others are told `disconnected`.
    @Test func aLostConnectionKeepsItsSeatForAResume() async throws {
        let server = try await TestServer.start { $0.rooms.grace = 3 }
        defer { Task { await server.stop() } }
        let (alice, joinedA) = try await Self.join(server, name: "alice")
        let a = try #require((joinedA["you"] as? [String: Any])?["id"] as? String)
        let token = try #require(joinedA["resumeToken"] as? String)
        let (bob, joinedB) = try await Self.join(server, name: "bob")
        defer { bob.close() }
        let b = try #require((joinedB["you"] as? [String: Any])?["id"] as? String)
        _ = try await Self.next(alice, "participantJoined")
        func seat(_ id: String) async throws -> Bool? {
            let detail = try await HTTPGet.fetch(port: server.ports.http, "/api/v1/rooms/standup").text
            let people = try Self.object(detail)["participants"] as? [[String: Any]]
            return people?.first { $0["id"] as? String == id }?["connected"] as? Bool
        }

        // Lost: the TCP connection ends without a close frame. The seat is held; bob hears nothing.
        alice.end(code: nil)
        var held = false
        for _ in 0..<100 where !held {
            held = try await seat(a) == false
            if !held { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(held, "the seat is held, not given up")
        let again = try await WebSocketTestClient.connect(port: server.ports.http, path: "/ws")
        defer { again.close() }
        again.send(Self.json(["type": "resume", "version": 1, "token": token]))
        let resumed = try await Self.next(again, "resumed")
        #expect((resumed["you"] as? [String: Any])?["id"] as? String == a && resumed["resumeToken"] as? String == token)
        #expect((resumed["participants"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [b])
        #expect(try await seat(a) == true)
        #expect(try await Self.nothingPending(bob), "bob was told nothing")
        let counters = try Self.object(try await HTTPGet.fetch(port: server.ports.http, "/api/v1/rooms").text)["counters"] as? [String: Int]
        #expect(counters?["resumes"] == 1, "\(String(describing: counters))")

        // A resume with a token nobody holds is refused, and the connection stays for a join.
        let stranger = try await WebSocketTestClient.connect(port: server.ports.http, path: "/ws")
        defer { stranger.close() }
        stranger.send(Self.json(["type": "resume", "version": 1, "token": "nobodys-token"]))
        #expect(try await Self.errorCode(stranger) == "resumeFailed")

        // 4000, a page unloading: held for the reload window (3 s), then bob is told.
        again.end(code: 4000)
        #expect(try await Self.nothingPending(bob))
        let unloaded = try await Self.next(bob, "participantLeft", timeout: .seconds(8))
        #expect(unloaded["participant"] as? String == a && unloaded["reason"] as? String == "disconnected")

        // 1000: an immediate leave.
        let (carol, joinedC) = try await Self.join(server, name: "carol")
        let c = try #require((joinedC["you"] as? [String: Any])?["id"] as? String)
        carol.end(code: 1000)
        let closed = try await Self.next(bob, "participantLeft", timeout: .seconds(2))
        #expect(closed["participant"] as? String == c && closed["reason"] as? String == "left")

        // Lost and not back within the grace (3 s here): given up, and bob is told.
        let (dave, joinedD) = try await Self.join(server, name: "dave")
        let d = try #require((joinedD["you"] as? [String: Any])?["id"] as? String)
        _ = try await Self.next(bob, "participantJoined")
        dave.end(code: nil)
        try await Task.sleep(for: .seconds(1))
        #expect(try await Self.nothingPending(bob), "held for the grace")
        let gone = try await Self.next(bob, "participantLeft", timeout: .seconds(8))
        #expect(gone["participant"] as? String == d && gone["reason"] as? String == "disconnected")
        let after = try Self.object(try await HTTPGet.fetch(port: server.ports.http, "/api/v1/rooms").text)["counters"] as? [String: Int]
        #expect(after?["expired"] == 2, "\(String(describing: after))")
    }
}
