import Foundation
import Testing
import TestSupport

/// WHIP and WHEP over HTTP with bad requests, using an offer Chromium wrote (no browser runs here).
@Suite(.serialized, .timeLimit(.minutes(5))) struct WHIPTests {
    static let offer: String = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../SFUTests/Fixtures/chromium-156-publish-offer.sdp")
        return (try? String(contentsOf: url, encoding: .utf8)) ?? ""
    }()
    static let playOffer: String = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../SFUTests/Fixtures/chromium-156-play-offer.sdp")
        return (try? String(contentsOf: url, encoding: .utf8)) ?? ""
    }()

    static func post(_ server: TestServer, _ path: String, _ body: String, type: String = "application/sdp") async throws -> HTTPGet {
        try await HTTPGet.fetch(port: server.ports.http, path, method: "POST", headers: ["Content-Type": type], body: body)
    }

    @Test func publishAnswersAndLocatesTheSession() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let r = try await Self.post(server, "/whip/live/cam", Self.offer)
        #expect(r.status == 201, "\(r.text)")
        #expect(r.headers["content-type"] == "application/sdp")
        let location = try #require(r.headers["location"])
        #expect(location.hasPrefix("/whip/live/cam/"))
        // STUN and TURN (UDP and TCP) in Link headers, TURN with credentials of the session's own, for the media port only.
        let links = r.headers["link"] ?? ""
        #expect(links.contains("<stun:127.0.0.1:\(server.ports.stunUDP)>; rel=\"ice-server\""), "\(links)")
        #expect(links.contains("<turn:127.0.0.1:\(server.ports.stunUDP)?transport=udp>; rel=\"ice-server\"; username=\"")
                && links.contains("<turn:127.0.0.1:\(server.ports.stunTCP)?transport=tcp>") && links.contains("~sfu\"; credential=\"")
                && links.contains("credential-type=\"password\""), "\(links)")
        // H.264 (Constrained Baseline, packetization mode 1) before VP8: the stream becomes a hub stream.
        #expect(r.text.contains("a=ice-lite") && r.text.contains("a=recvonly") && r.text.contains("a=rtpmap:108 H264/90000")
                && !r.text.contains("VP8"), "\(r.text)")
        #expect(server.swarm.hub.snapshot().contains { $0.app == "live" && $0.stream == "cam" && $0.published }, "a hub stream")
        // The name is taken in the hub too: RTMP cannot publish it.
        let rtmp = try await RTMPTestClient.connect(port: server.ports.rtmp)
        #expect(try await rtmp.publish("cam") == "NetStream.Publish.BadName")
        let listed = try await HTTPGet.fetch(port: server.ports.http, "/api/v1/streams").text
        #expect(listed.contains("\"webrtc\":[{") && listed.contains("live\\/cam"), "a WHIP stream is listed: \(listed)")
        // The same stream again: 409. A viewer gets an answer with our SSRCs.
        #expect(try await Self.post(server, "/whip/live/cam", Self.offer).status == 409)
        let play = try await Self.post(server, "/whep/live/cam", Self.playOffer)
        #expect(play.status == 201 && play.text.contains("a=sendonly") && play.text.contains("a=ssrc:"), "\(play.text)")
        #expect(try await HTTPGet.fetch(port: server.ports.http, location, method: "DELETE").status == 200)
        #expect(try await HTTPGet.fetch(port: server.ports.http, location, method: "DELETE").status == 404, "already ended")
        // With the publisher gone, the stream can be published again.
        try await server.waitUntil("the stream to be free", timeout: .seconds(5)) {
            try await Self.post(server, "/whip/live/cam", Self.offer).status == 201
        }
    }

    /// A stream RTMP publishes cannot be published over WHIP (409, saying so); a VP8-only offer is published for
    /// WebRTC viewers, and the API says why it is no hub stream.
    @Test func theHubNameIsSharedWithRTMPAndVP8OnlyIsNoHubStream() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let rtmp = try await RTMPTestClient.connect(port: server.ports.rtmp)
        #expect(try await rtmp.publish("taken") == "NetStream.Publish.Start")
        let refused = try await Self.post(server, "/whip/live/taken", Self.offer)
        #expect(refused.status == 409 && refused.text.contains("over RTMP"), "\(refused.text)")
        let vp8 = try await Self.post(server, "/whip/live/vp8", Self.offer.replacingOccurrences(of: "H264/90000", with: "H265/90000"))
        #expect(vp8.status == 201 && vp8.text.contains("VP8/90000"), "\(vp8.text)")
        #expect(!server.swarm.hub.snapshot().contains { $0.stream == "vp8" })
        let api = try await HTTPGet.fetch(port: server.ports.http, "/api/v1/webrtc/streams").text
        #expect(api.contains("\"hubRefused\":\"the offer has no H.264"), "\(api)")
    }

    @Test func badRequestsGetClearErrors() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let wrongType = try await Self.post(server, "/whip/live/a", Self.offer, type: "text/plain")
        #expect(wrongType.status == 415 && wrongType.text.contains("Content-Type"))
        let garbage = try await Self.post(server, "/whip/live/a", "v=0\r\nthis is not sdp\r\n")
        #expect(garbage.status == 400 && garbage.text.contains("not valid SDP"), "\(garbage.text)")
        let noOpus = try await Self.post(server, "/whip/live/a", Self.offer.replacingOccurrences(of: "opus/48000/2", with: "speex/48000"))
        #expect(noOpus.status == 400 && noOpus.text.contains("no common audio codec"), "\(noOpus.text)")
        let recvonly = try await Self.post(server, "/whip/live/a", Self.playOffer)
        #expect(recvonly.status == 400 && recvonly.text.contains("recvonly"), "\(recvonly.text)")
        let notLive = try await Self.post(server, "/whep/live/nobody", Self.playOffer)
        #expect(notLive.status == 404 && notLive.text.contains("not being published"))
        let badName = try await Self.post(server, "/whip/live/bad%20name", Self.offer)
        #expect(badName.status == 400)
        #expect(try await HTTPGet.fetch(port: server.ports.http, "/whip/live/a/12345", method: "DELETE").status == 404)
        #expect(try await HTTPGet.fetch(port: server.ports.http, "/whep/live/a/nope", method: "DELETE").status == 404)
        // The server still serves a good publisher afterwards.
        #expect(try await Self.post(server, "/whip/live/a", Self.offer).status == 201)
    }

    /// With publish keys configured, WHIP needs one as a Bearer token (the RTMP keys); WHEP stays open.
    @Test func publishingNeedsABearerTokenWhenKeysAreConfigured() async throws {
        let server = try await TestServer.start { c in
            c.rtmp.authentication.keys = ["s3cret"]
            c.rtmp.authentication.streamKeys = ["live/studio": "studio-key"]
        }
        defer { Task { await server.stop() } }
        let missing = try await Self.post(server, "/whip/live/a", Self.offer)
        #expect(missing.status == 401 && missing.headers["www-authenticate"] == "Bearer" && missing.text.contains("Bearer"))
        func post(_ path: String, token: String) async throws -> Int {
            try await HTTPGet.fetch(port: server.ports.http, path, method: "POST",
                                    headers: ["Content-Type": "application/sdp", "Authorization": "Bearer \(token)"], body: Self.offer).status
        }
        #expect(try await post("/whip/live/a", token: "wrong") == 401)
        #expect(try await post("/whip/live/a", token: "studio-key") == 401, "a stream's key is for that stream only")
        #expect(try await post("/whip/live/studio", token: "studio-key") == 201)
        #expect(try await post("/whip/live/a", token: "s3cret") == 201)
        #expect(try await Self.post(server, "/whep/live/a", Self.playOffer).status == 201, "playing needs no key")
    }

    /// A page on another origin can publish: the preflight is answered, and Location and Link are readable.
    @Test func corsPreflight() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let r = try await HTTPGet.fetch(port: server.ports.http, "/whip/live/a", method: "OPTIONS",
                                        headers: ["Origin": "https://studio.example", "Access-Control-Request-Method": "POST",
                                                  "Access-Control-Request-Headers": "content-type, authorization"])
        #expect(r.status == 204 || r.status == 200)
        #expect(r.headers["access-control-allow-origin"] == "*")
        #expect(r.headers["access-control-allow-methods"]?.contains("POST") == true && r.headers["access-control-allow-methods"]?.contains("DELETE") == true)
        #expect(r.headers["access-control-allow-headers"]?.contains("authorization") == true)
        let post = try await HTTPGet.fetch(port: server.ports.http, "/whip/live/a", method: "POST",
                                           headers: ["Content-Type": "application/sdp", "Origin": "https://studio.example"], body: Self.offer)
        #expect(post.headers["access-control-expose-headers"]?.contains("Location") == true)
        #expect(post.headers["access-control-expose-headers"]?.contains("Link") == true)
    }
}
