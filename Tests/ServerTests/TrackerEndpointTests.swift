import Foundation
import NIOCore
import P2PTracker
import RTMP
import Server
import Testing
import TestSupport

/// The P2P tracker at `/tracker`, over real WebSockets on loopback: relaying, forgetting, and bad input.
@Suite(.serialized, .timeLimit(.minutes(3))) struct TrackerEndpointTests {
    struct ChunkListing: Decodable {
        struct Swarm: Decodable { var infoHash: String; var tracker: String }
        var swarm: Swarm?
    }

    /// Publishes `name` (a publish is enough to open the stream's HLS rendition, and so its swarm) and returns
    /// the publisher and the swarm's info hash.
    static func live(_ server: TestServer, _ name: String) async throws -> (RTMPTestClient, InfoHash) {
        let c = try await RTMPTestClient.connect(port: server.ports.rtmp)
        guard try await c.publish(name) == "NetStream.Publish.Start" else { throw TestFailure("publish refused") }
        var hash: InfoHash?
        try await server.waitUntil("the swarm of \(name)", timeout: .seconds(10)) {
            guard let r = try? await HTTPGet.fetch(port: server.ports.http, "/api/v1/streams/live/\(name)/chunks"), r.status == 200,
                  let listing = try? JSONDecoder().decode(ChunkListing.self, from: r.body), let swarm = listing.swarm else { return false }
            hash = InfoHash(hex: swarm.infoHash)
            return swarm.tracker == "/tracker"
        }
        return (c, try #require(hash))
    }

    static func peer(_ s: String) -> PeerID { PeerID(Array(("-TEST01-" + s + String(repeating: "x", count: 12)).utf8.prefix(20)))! }

    static func json(_ object: [String: Any]) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: object), as: UTF8.self)
    }

    static func announce(_ hash: InfoHash, _ peer: PeerID, offers: [String] = []) -> String {
        json(["action": "announce", "info_hash": hash.binaryString, "peer_id": peer.binaryString, "numwant": offers.count,
              "offers": offers.map { ["offer_id": $0, "offer": ["type": "offer", "sdp": "v=0\r\nsdp-\($0)\r\n"]] }])
    }

    static func answer(_ hash: InfoHash, from: PeerID, to: PeerID, offerID: String) -> String {
        json(["action": "announce", "info_hash": hash.binaryString, "peer_id": from.binaryString, "to_peer_id": to.binaryString,
              "offer_id": offerID, "answer": ["type": "answer", "sdp": "v=0\r\nanswer\r\n"]])
    }

    static func object(_ text: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    static func failure(_ client: WebSocketTestClient) async throws -> String {
        let o = try object(try await client.text())
        return try #require(o["failure reason"] as? String, "not a failure: \(o)")
    }

    /// Relays offers and answers, and a peer's announce reports the swarm; a closed connection's peer is gone at once.
    @Test func relaysBetweenPeersAndForgetsThoseWhoLeave() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let (publisher, hash) = try await Self.live(server, "swarm")
        defer { withExtendedLifetime(publisher) {} }
        let (a, b) = (try await WebSocketTestClient.connect(port: server.ports.http),
                      try await WebSocketTestClient.connect(port: server.ports.http))
        defer { a.close(); b.close() }
        let (pa, pb) = (Self.peer("a"), Self.peer("b\u{ff}"))
        b.send(Self.announce(hash, pb))
        let reply = try Self.object(try await b.text())
        #expect(reply["action"] as? String == "announce" && reply["incomplete"] as? Int == 1)
        #expect(InfoHash(binaryString: reply["info_hash"] as? String ?? "") == hash)
        #expect((reply["x_liveswarm"] as? [String: Any])?["stream"] as? String == "live/swarm")

        a.send(Self.announce(hash, pa, offers: ["offer-1"]))
        #expect(try Self.object(try await a.text())["incomplete"] as? Int == 2)
        let offer = try Self.object(try await b.text())
        #expect(offer["offer_id"] as? String == "offer-1")
        #expect(PeerID(binaryString: offer["peer_id"] as? String ?? "") == pa)
        #expect((offer["offer"] as? [String: Any])?["sdp"] as? String == "v=0\r\nsdp-offer-1\r\n")

        b.send(Self.answer(hash, from: pb, to: pa, offerID: "offer-1"))
        let answer = try Self.object(try await a.text())
        #expect(answer["offer_id"] as? String == "offer-1")
        #expect(PeerID(binaryString: answer["peer_id"] as? String ?? "") == pb)
        #expect((answer["answer"] as? [String: Any])?["sdp"] as? String == "v=0\r\nanswer\r\n")

        // A leaves: B's next announce counts one peer.
        a.close()
        try await server.waitUntil("A to be forgotten", timeout: .seconds(5)) {
            b.send(Self.announce(hash, pb))
            return (try? Self.object(try await b.text()))?["incomplete"] as? Int == 1
        }
    }

    /// The operator's P2P switch: only with the API token; off, the swarm's peers are told at once over their
    /// WebSockets, announces are answered the same way, and the chunk list and /api/v1/p2p say so; on, announces join.
    @Test func theOperatorsP2PSwitchTellsThePeersAndTheChunkList() async throws {
        let server = try await TestServer.start { $0.apiToken = "operator-secret" }
        defer { Task { await server.stop() } }
        let (publisher, hash) = try await Self.live(server, "switch")
        defer { withExtendedLifetime(publisher) {} }
        let path = "/api/v1/p2p/streams/live/switch"
        func put(_ body: String, token: String? = "operator-secret") async throws -> HTTPGet {
            try await HTTPGet.fetch(port: server.ports.http, path, method: "PUT",
                                    headers: token.map { ["Authorization": "Bearer \($0)", "Content-Type": "application/json"] } ?? [:], body: body)
        }
        #expect(try await put(#"{"enabled":false}"#, token: nil).status == 401)
        #expect(try await put(#"{"enabled":false}"#, token: "wrong").status == 401)
        #expect(try await put("{garbage").status == 400)
        #expect(try await HTTPGet.fetch(port: server.ports.http, "/api/v1/p2p/streams/live/no%20such", method: "PUT",
                                        headers: ["Authorization": "Bearer operator-secret"], body: #"{"enabled":false}"#).status == 400)

        let (a, b) = (try await WebSocketTestClient.connect(port: server.ports.http),
                      try await WebSocketTestClient.connect(port: server.ports.http))
        defer { a.close(); b.close() }
        a.send(Self.announce(hash, Self.peer("a")))
        #expect(try Self.object(try await a.text())["incomplete"] as? Int == 1)
        b.send(Self.announce(hash, Self.peer("b")))
        #expect(try Self.object(try await b.text())["incomplete"] as? Int == 2)

        let off = try await put(#"{"enabled":false}"#)
        #expect(off.status == 200 && off.text.contains(#""enabled":false"#), "\(off.status) \(off.text)")
        for peer in [a, b] {
            let told = try Self.object(try await peer.text())
            #expect((told["x_liveswarm"] as? [String: Any])?["p2p"] as? Bool == false, "\(told)")
            #expect(InfoHash(binaryString: told["info_hash"] as? String ?? "") == hash)
        }
        a.send(Self.announce(hash, Self.peer("a"), offers: ["o1"]))
        let refused = try Self.object(try await a.text())
        #expect((refused["x_liveswarm"] as? [String: Any])?["p2p"] as? Bool == false && refused["offer"] == nil)
        let chunks = try await HTTPGet.fetch(port: server.ports.http, "/api/v1/streams/live/switch/chunks")
        #expect(chunks.text.contains(#""p2p":false"#))
        #expect(try await HTTPGet.fetch(port: server.ports.http, "/api/v1/p2p").text.contains(#""p2p":false"#))

        #expect(try await put(#"{"enabled":true}"#).status == 200)
        a.send(Self.announce(hash, Self.peer("a")))
        let back = try Self.object(try await a.text())
        #expect(back["incomplete"] as? Int == 1 && back["failure reason"] == nil, "\(back)")
        #expect(try await HTTPGet.fetch(port: server.ports.http, "/api/v1/streams/live/switch/chunks").text.contains(#""p2p":true"#))
    }

    /// Without --api-token the switch is refused outright.
    @Test func theP2PSwitchIsOffWithoutAnAPIToken() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let r = try await HTTPGet.fetch(port: server.ports.http, "/api/v1/p2p/streams/live/x", method: "PUT", body: #"{"enabled":false}"#)
        #expect(r.status == 403 && r.text.contains("--api-token"))
    }

    /// Each kind of bad input gets a failure reason or a close for its own connection; the tracker stays up, and
    /// a swarm next door goes on relaying.
    struct Chunks: Decodable {
        struct Chunk: Decodable { var id: String; var uri: String; var bytes: Int; var sha256: String; var independent: Bool }
        var chunks: [Chunk]
    }

    /// Part announcements over a real stream (ffmpeg): a peer that asked gets every new part, in order, as it is
    /// made, and each one's size and hash are those of the part the origin serves; a peer that did not ask gets none.
    @Test func peersThatAskGetEveryNewPartAsItIsMade() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let ffmpeg = try Tool.publisher(url: "\(server.rtmpURL)/live/parts", seconds: 40, size: "320x180")
        defer { ffmpeg.kill() }
        var hash: InfoHash?
        try await server.waitUntil("the stream's first parts", timeout: .seconds(20)) {
            guard let r = try? await HTTPGet.fetch(port: server.ports.http, "/api/v1/streams/live/parts/chunks"), r.status == 200,
                  let listing = try? JSONDecoder().decode(ChunkListing.self, from: r.body), let swarm = listing.swarm else { return false }
            hash = InfoHash(hex: swarm.infoHash)
            return true
        }
        let swarm = try #require(hash)
        let (a, b) = (try await WebSocketTestClient.connect(port: server.ports.http),
                      try await WebSocketTestClient.connect(port: server.ports.http))
        defer { a.close(); b.close() }
        a.send(Self.json(["action": "announce", "info_hash": swarm.binaryString, "peer_id": Self.peer("a").binaryString,
                          "x_liveswarm": ["parts": true]]))
        #expect(try Self.object(try await a.text())["interval"] != nil)
        b.send(Self.announce(swarm, Self.peer("b")))
        #expect(try Self.object(try await b.text())["interval"] != nil)

        var parts: [[String: Any]] = []
        while parts.count < 8 {
            let o = try Self.object(try await a.text(timeout: .seconds(5)))
            #expect(InfoHash(binaryString: o["info_hash"] as? String ?? "") == swarm && o["interval"] == nil)
            parts.append(try #require((o["x_liveswarm"] as? [String: Any])?["part"] as? [String: Any]))
        }
        // In order, none missed: the same segment's next part, or the next segment's first.
        let ids = parts.map { ($0["id"] as? String ?? "").split(separator: ".").compactMap { Int($0) } }
        for (x, y) in zip(ids, ids.dropFirst()) {
            #expect((y[0] == x[0] && y[1] == x[1] + 1) || (y[0] == x[0] + 1 && y[1] == 0), "\(x) then \(y)")
        }
        let listed = try JSONDecoder().decode(Chunks.self, from: try await HTTPGet.fetch(port: server.ports.http, "/api/v1/streams/live/parts/chunks").body)
        for p in parts {
            let chunk = try #require(listed.chunks.first { $0.id == p["id"] as? String }, "\(p)")
            #expect(p["bytes"] as? Int == chunk.bytes && p["sha256"] as? String == Data([UInt8](hex: chunk.sha256)).base64EncodedString() && p["independent"] as? Bool == chunk.independent)
            let served = try await HTTPGet.fetch(port: server.ports.http, "/live/parts/\(chunk.uri)")
            #expect(served.body.count == chunk.bytes)
        }
        // (The chunk list writes hashes in hex, announcements in base64 as the playlist's X-SHA256.)
        // B did not ask: nothing came to it while A got eight parts.
        #expect(await b.next(timeout: .milliseconds(300)) == nil)
    }

    @Test func badInputCostsOnlyTheConnectionThatSentIt() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let (pub1, hash) = try await Self.live(server, "one")
        let (pub2, other) = try await Self.live(server, "two")
        defer { withExtendedLifetime((pub1, pub2)) {} }
        // A healthy pair in the other swarm.
        let (x, y) = (try await WebSocketTestClient.connect(port: server.ports.http),
                      try await WebSocketTestClient.connect(port: server.ports.http))
        defer { x.close(); y.close() }
        y.send(Self.announce(other, Self.peer("y")))
        _ = try await y.text()

        let bad = try await WebSocketTestClient.connect(port: server.ports.http)
        defer { bad.close() }
        bad.send("{\"action\":\"announce\",")
        #expect(try await Self.failure(bad).hasPrefix("malformed message"))
        bad.send(#"{"action":"format_disk"}"#)
        #expect(try await Self.failure(bad).hasPrefix("unknown action \"format_disk\""))
        bad.send(Self.json(["action": "announce", "info_hash": hash.hex, "peer_id": Self.peer("bad").binaryString]))
        #expect(try await Self.failure(bad) == "info_hash must be a binary string of 20 characters, not 40")
        bad.send(Self.json(["action": "announce", "info_hash": String(hash.binaryString.prefix(19)), "peer_id": Self.peer("bad").binaryString]))
        #expect(try await Self.failure(bad).hasSuffix("not 19"))
        let torrent = InfoHash(Array(repeating: 0xAB, count: 20))!
        bad.send(Self.announce(torrent, Self.peer("bad")))
        #expect(try await Self.failure(bad).hasPrefix("unknown info_hash abab"))
        bad.send(Self.announce(hash, Self.peer("bad")))
        _ = try await bad.text()
        bad.send(Self.answer(hash, from: Self.peer("bad"), to: Self.peer("y"), offerID: "made-up"))
        #expect(try await Self.failure(bad).hasPrefix("no such offer"))

        // Oversized: the connection is closed with 1009 (message too big), after the tracker's failure reply (the
        // port's frame limit is the rooms' larger one, so the tracker itself refuses it).
        bad.send(String(repeating: "x", count: Tracker.Configuration().maxMessageBytes + 1))
        var event = await bad.next()
        if case .text(let t)? = event {
            #expect(t.contains("65537"), "\(t)")
            event = await bad.next()
        }
        #expect(event == .closed(1009))

        // A flood of announces: refused, then closed with 1008 (policy violation).
        let flood = try await WebSocketTestClient.connect(port: server.ports.http)
        defer { flood.close() }
        for i in 0..<400 { flood.send(Self.announce(hash, Self.peer("f"), offers: ["f\(i)"])) }
        var replies = 0, failures = 0, closedWith: UInt16??
        while closedWith == nil, let e = await flood.next() {
            switch e {
            case .text(let t): if (try Self.object(t))["failure reason"] != nil { failures += 1 } else { replies += 1 }
            case .closed(let code): closedWith = code
            }
        }
        #expect(closedWith == .some(1008), "the flood's connection is closed: \(String(describing: closedWith))")
        #expect(replies <= 60 && failures == Tracker.Configuration().maxRefusals, "\(replies) replies, \(failures) refusals")

        // The tracker is up and the other swarm relays.
        x.send(Self.announce(other, Self.peer("x"), offers: ["still-here"]))
        _ = try await x.text()
        #expect(try Self.object(try await y.text())["offer_id"] as? String == "still-here")
        let late = try await WebSocketTestClient.connect(port: server.ports.http)
        defer { late.close() }
        late.send(Self.announce(hash, Self.peer("late")))
        #expect(try Self.object(try await late.text())["action"] as? String == "announce")
    }
}
