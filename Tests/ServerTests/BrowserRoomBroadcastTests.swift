import Foundation
import Server
import Signaling
import StreamHub
import Testing
import TestSupport

/// A meeting broadcast: a Chromium participant on the meeting page (its test source: a canvas in its colour with a
/// moving clock, and a tone) in a room with a secret. Its stream is on no open URL until the operator's write
/// (`PUT /api/v1/rooms/ROOM/broadcast`), then ffmpeg plays it over HTTP-FLV and LL-HLS with a room token, and
/// not without one. Turning the broadcast off ends the stream.
@Suite(.serialized, .timeLimit(.minutes(5))) struct BrowserRoomBroadcastTests {
    static let apiToken = "broadcast-test"
    static let secret = "room-secret-for-tests"

    static func token(room: String, identity: String, publish: Bool = true) -> String {
        RoomToken(room: room, identity: identity, expires: Int(Date().timeIntervalSince1970) + 600, canPublish: publish).signed(secret: secret)
    }

    static func broadcast(_ server: TestServer, _ room: String, _ enabled: Bool, token: String? = Self.apiToken) async throws -> HTTPGet {
        try await HTTPGet.fetch(port: server.ports.http, "/api/v1/rooms/\(room)/broadcast", method: "PUT",
                                headers: token.map { ["Authorization": "Bearer \($0)", "Content-Type": "application/json"] } ?? [:],
                                body: #"{"enabled": \#(enabled)}"#)
    }

    /// Whether `/api/v1/streams` lists `key` among the hub's streams.
    static func listed(_ server: TestServer, _ key: StreamKey) async throws -> Bool {
        let streams = json(try await HTTPGet.fetch(port: server.ports.http, "/api/v1/streams"))["streams"] as? [[String: Any]] ?? []
        return streams.contains { $0["app"] as? String == key.app && $0["stream"] as? String == key.stream }
    }

    static func json(_ r: HTTPGet) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: r.body) as? [String: Any]) ?? [:]
    }

    @Test func aParticipantIsPlayableOverHTTPFLVAndLLHLSOnlyAfterTheOperatorsWriteAndWithARoomToken() async throws {
        let server = try await TestServer.start { c in
            c.apiToken = Self.apiToken
            c.rooms.videoCodec = "H264"
            c.rooms.secret = Self.secret
        }
        defer { Task { await server.stop() } }
        let room = "town"
        let join = Self.token(room: room, identity: "host")
        let page = try Tool.drive(url: "\(server.httpURL)/meeting/?room=\(room)&name=host&token=\(join)&source=test&color=2040c0&tone=660&audioProcessing=0",
                                  seconds: 80, statsJS: "return window.meetingStats()",
                                  flags: ["--autoplay-policy=no-user-gesture-required"])
        defer { page.kill(SIGTERM) }

        // The participant publishes: its id, from the rooms' API.
        var pid = ""
        try await server.waitUntil("the participant's camera to reach the server", timeout: .seconds(40)) {
            let detail = Self.json(try await HTTPGet.fetch(port: server.ports.http, "/api/v1/rooms/\(room)",
                                                      headers: ["Authorization": "Bearer \(Self.apiToken)"]))
            let people = detail["participants"] as? [[String: Any]] ?? []
            guard let p = people.first, let tracks = p["tracks"] as? [[String: Any]],
                  tracks.contains(where: { $0["kind"] as? String == "video" && ($0["packetsReceived"] as? Int ?? 0) > 100 }) else { return false }
            pid = p["id"] as? String ?? ""
            return true
        }
        let key = try #require(StreamKey(app: "room-\(room)", stream: pid))
        let viewer = Self.token(room: room, identity: "viewer", publish: false)

        // Not on any open URL before the write.
        try await Task.sleep(for: .seconds(2))
        #expect(try await HTTPGet.fetch(port: server.ports.http, "/\(key.app)/\(key.stream).flv?token=\(viewer)").status == 404)
        #expect(try await HTTPGet.fetch(port: server.ports.http, "/\(key.app)/\(key.stream)/index.m3u8?token=\(viewer)").status == 404)
        #expect(!(try await Self.listed(server, key)))

        // Only the operator may turn it on.
        #expect(try await Self.broadcast(server, room, true, token: nil).status == 401)
        #expect(try await Self.broadcast(server, room, true, token: "wrong").status == 401)
        let on = try await Self.broadcast(server, room, true)
        #expect(on.status == 200, "\(on.text)")
        #expect(Self.json(on)["streams"] as? [String] == [key.description], "\(on.text)")
        try await server.waitForStream(key, timeout: .seconds(20))
        #expect(try await Self.listed(server, key))

        // Without a token, or with another room's, it does not play.
        for path in ["/\(key.app)/\(key.stream).flv", "/\(key.app)/\(key.stream)/index.m3u8", "/\(key.app)/\(key.stream).m3u8"] {
            let none = try await HTTPGet.fetch(port: server.ports.http, path)
            #expect(none.status == 401 && none.text.contains("token"), "\(path): \(none.status) \(none.text)")
            let other = try await HTTPGet.fetch(port: server.ports.http, path + "?token=\(Self.token(room: "elsewhere", identity: "viewer"))")
            #expect(other.status == 403 && other.text.contains("elsewhere"), "\(path): \(other.status) \(other.text)")
        }
        let whep = try await HTTPGet.fetch(port: server.ports.http, "/whep/\(key.app)/\(key.stream)", method: "POST",
                                           headers: ["Content-Type": "application/sdp"], body: "v=0\r\n")
        #expect(whep.status == 401, "WHEP without a token: \(whep.status) \(whep.text)")
        let rtmpRefused = try Tool("ffprobe", ["-v", "error", "-show_streams", "\(server.rtmpURL)/\(key.app)/\(key.stream)"])
        let rtmpStatus = await rtmpRefused.wait(timeout: .seconds(20))
        #expect(rtmpStatus != 0 && !rtmpRefused.output.contains("codec_name=h264"), "RTMP without a token: \(rtmpRefused.errorOutput.prefix(300))")

        // With the token: h264 and aac over HTTP-FLV, LL-HLS and RTMP, and ffmpeg decodes 10 s of HTTP-FLV and LL-HLS.
        try await Task.sleep(for: .seconds(6))
        let urls = [("HTTP-FLV", "\(server.httpURL)/\(key.app)/\(key.stream).flv?token=\(viewer)"),
                    ("LL-HLS", "\(server.httpURL)/\(key.app)/\(key.stream)/index.m3u8?token=\(viewer)"),
                    ("RTMP", "\(server.rtmpURL)/\(key.app)/\(key.stream)?token=\(viewer)")]
        for (name, url) in urls {
            let p = try await Probe.run(url)
            #expect(p.video?.codec_name == "h264", "\(name): \(p.streams)")
            #expect(p.audio?.codec_name == "aac", "\(name): \(p.streams)")
        }
        let decoded = try await withThrowingTaskGroup(of: (String, BrowserWHIPHubTests.Decoded).self) { group in
            for (name, url) in urls.prefix(2) { group.addTask { (name, try await BrowserWHIPHubTests.Decoded.read(url, seconds: 10)) } }
            var all: [String: BrowserWHIPHubTests.Decoded] = [:]
            for try await (name, d) in group { all[name] = d }
            return all
        }
        for (name, d) in decoded.sorted(by: { $0.key < $1.key }) {
            print("\(name): \(d.times.count) frames in \(d.span) s (\(d.fps) fps), longest gap \(Int(d.maxGap * 1000)) ms, \(d.audio.count) audio frames")
            // The meeting page's test source draws 15 frames a second.
            #expect(d.span >= 8 && d.fps >= 13, "\(name): \(d.times.count) frames over \(d.span) s")
            #expect(d.maxGap < 1, "\(name): a gap of \(d.maxGap) s")
            #expect(d.audio.count > 300, "\(name): \(d.audio.count) audio frames")
        }
        let detail = Self.json(try await HTTPGet.fetch(port: server.ports.http, "/api/v1/rooms/\(room)",
                                                      headers: ["Authorization": "Bearer \(Self.apiToken)"]))
        #expect(detail["broadcast"] as? Bool == true)
        let participant = (detail["participants"] as? [[String: Any]])?.first
        #expect(participant?["hubStream"] as? String == key.description, "\(detail)")

        // Off: the stream ends (after the hub's republish grace) and stays off the open URLs.
        let off = try await Self.broadcast(server, room, false)
        #expect(off.status == 200 && (Self.json(off)["streams"] as? [String])?.isEmpty == true, "\(off.text)")
        try await server.waitUntil("the stream to end", timeout: .seconds(30)) {
            !(try await Self.listed(server, key))
        }
    }

    /// Rooms in VP8 cannot be broadcast (the hub needs H.264 and video is not transcoded): a clear 409, and a
    /// config that asks for it does not load.
    @Test func aVP8RoomIsRefusedWithItsReason() async throws {
        let server = try await TestServer.start { $0.apiToken = Self.apiToken }
        defer { Task { await server.stop() } }
        let r = try await Self.broadcast(server, "vp8room", true)
        #expect(r.status == 409 && r.text.contains("H.264") && r.text.contains("rooms.video_codec"), "\(r.status) \(r.text)")
        let bad = try await HTTPGet.fetch(port: server.ports.http, "/api/v1/rooms/x/broadcast", method: "PUT",
                                          headers: ["Authorization": "Bearer \(Self.apiToken)"], body: "garbage")
        #expect(bad.status == 400 && bad.text.contains("enabled"), "\(bad.status) \(bad.text)")
        #expect(throws: (any Error).self) {
            try ConfigFile.parse("rooms:\n  broadcast: [town]\n").apply(to: ServerConfiguration())
        }
        let ok = try ConfigFile.parse("rooms:\n  video_codec: h264\n  broadcast: [town]\n").apply(to: ServerConfiguration())
        #expect(ok.rooms.broadcast == ["town"])
    }
}
