import Foundation
import Testing

/// With `--api-token` set, the read routes that show users or client addresses want it: a stream's per-viewer
/// details, a room's participants, the TURN relays (401 without it or with a wrong one); the stream list stays
/// public without the publishers' addresses. Without a token they are open, as before.
@Suite(.serialized, .timeLimit(.minutes(1))) struct APITokenTests {
    static let token = "read-test"

    static func get(_ server: TestServer, _ path: String, token: String?) async throws -> HTTPGet {
        try await HTTPGet.fetch(port: server.ports.http, path, headers: token.map { ["Authorization": "Bearer \($0)"] } ?? [:])
    }

    /// The publisher's address in `GET /api/v1/streams`, nil when left out.
    static func publisherPeer(_ r: HTTPGet) throws -> String? {
        let list = try #require(try JSONSerialization.jsonObject(with: r.body) as? [String: Any])
        let streams = list["streams"] as? [[String: Any]] ?? []
        return streams.first { $0["stream"] as? String == "cam" }?["publisherPeer"] as? String
    }

    @Test(arguments: [true, false])
    func readRoutesWithUsersOrAddressesWantTheToken(tokenSet: Bool) async throws {
        let server = try await TestServer.start { if tokenSet { $0.apiToken = Self.token } }
        defer { Task { await server.stop() } }
        let publisher = try await RTMPTestClient.connect(port: server.ports.rtmp)
        defer { Task { await publisher.tcp.close() } }
        #expect(try await publisher.publish("cam") == "NetStream.Publish.Start")
        try await publisher.sendVideo(from: 0, count: 1, config: true)
        try await server.waitUntil("the stream to be listed", timeout: .seconds(5)) {
            try Self.publisherPeer(try await Self.get(server, "/api/v1/streams", token: tokenSet ? Self.token : nil)) != nil
        }
        for path in ["/api/v1/streams/live/cam", "/api/v1/rooms/standup", "/api/v1/turn"] {
            let anonymous = try await Self.get(server, path, token: nil)
            let wrong = try await Self.get(server, path, token: "guess")
            let right = try await Self.get(server, path, token: Self.token)
            // No room of that name: the route answers past the check.
            let past = path.contains("rooms") ? 404 : 200
            if tokenSet {
                #expect(anonymous.status == 401 && anonymous.headers["www-authenticate"] == "Bearer", "\(path) without the token: \(anonymous.status)")
                #expect(wrong.status == 401, "\(path) with a wrong token: \(wrong.status)")
                #expect(right.status == past, "\(path) with the token: \(right.status)")
            } else {
                #expect(anonymous.status == past, "\(path) without a token set: \(anonymous.status)")
            }
        }
        let anonymousList = try await Self.get(server, "/api/v1/streams", token: nil)
        #expect(anonymousList.status == 200)
        let peer = try Self.publisherPeer(anonymousList)
        #expect(tokenSet ? peer == nil : peer?.contains("127.0.0.1") == true, "the publisher's address without the token: \(peer ?? "none")")
        if tokenSet {
            let given = try Self.publisherPeer(try await Self.get(server, "/api/v1/streams", token: Self.token))
            #expect(given?.contains("127.0.0.1") == true, "with the token: \(given ?? "none")")
        }
    }
}
