import Foundation
import Server
import Testing
import TestSupport

/// Pushing a hub stream to another RTMP server: ffmpeg listening (`ffmpeg -listen 1`) is the other server, and its
/// recording is read back with ffprobe. The push survives that server's restart, and bad requests get clear errors.
@Suite(.serialized, .timeLimit(.minutes(5))) struct PushTests {
    static let token = "push-test"

    /// A free TCP port on 127.0.0.1 for ffmpeg to listen on.
    static func freeTCPPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard bound else { throw TestFailure("no free TCP port") }
        return Int(UInt16(bigEndian: a.sin_port))
    }

    /// ffmpeg as an RTMP server on `port`, recording what is published to it into `file` (FLV, copied).
    static func listener(port: Int, file: String) throws -> Tool {
        try Tool("ffmpeg", ["-hide_banner", "-loglevel", "error", "-listen", "1", "-timeout", "30",
                            "-i", "rtmp://127.0.0.1:\(port)/live/target", "-c", "copy", "-f", "flv", "-y", file])
    }

    static func push(_ server: TestServer, _ stream: String, _ body: String, token: String? = Self.token) async throws -> HTTPGet {
        try await HTTPGet.fetch(port: server.ports.http, "/api/v1/streams/\(stream)/pushes", method: "POST",
                                headers: token.map { ["Authorization": "Bearer \($0)"] } ?? [:], body: body)
    }

    static func list(_ server: TestServer, _ stream: String) async throws -> [[String: Any]] {
        let text = try await HTTPGet.fetch(port: server.ports.http, "/api/v1/streams/\(stream)/pushes").text
        return (try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])?["pushes"] as? [[String: Any]] ?? []
    }

    /// Waits until `file` holds at least `bytes` and ffprobe finds H.264 and AAC in it.
    static func recorded(_ file: String, bytes: Int = 200_000) async throws -> Probe {
        try await TestServer.waitUntil("\(file) to hold \(bytes) bytes", timeout: .seconds(20)) {
            ((try? FileManager.default.attributesOfItem(atPath: file))?[.size] as? Int ?? 0) >= bytes
        }
        return try await Probe.run(file)
    }

    @Test func anRTMPStreamIsPushedAndThePushComesBackAfterTheServerRestarts() async throws {
        let server = try await TestServer.start { $0.apiToken = Self.token }
        defer { Task { await server.stop() } }
        let source = try Tool.publisher(url: "\(server.rtmpURL)/live/src", seconds: 60, gop: 60)
        defer { source.kill() }
        let port = try Self.freeTCPPort()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("push-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = try Self.listener(port: port, file: dir.appendingPathComponent("1.flv").path)
        defer { first.kill() }
        try await Task.sleep(for: .milliseconds(500))
        let made = try await Self.push(server, "live/src", #"{"url": "rtmp://127.0.0.1:\#(port)/live/target"}"#)
        #expect(made.status == 201 && made.text.contains("\"id\":\"p1\"") && !made.text.contains("target\"}"), "\(made.text)")
        let p1 = try await Self.recorded(dir.appendingPathComponent("1.flv").path)
        #expect(p1.video?.codec_name == "h264" && p1.video?.width == 640 && p1.audio?.codec_name == "aac", "\(p1.streams)")
        var pushes = try await Self.list(server, "live/src")
        #expect(pushes.first?["state"] as? String == "publishing" && (pushes.first?["bytesSent"] as? Int ?? 0) > 100_000, "\(pushes)")
        #expect((pushes.first?["target"] as? String)?.contains("target") == false, "the stream key is not shown")

        // The other server goes away: the push fails, waits and tries again until it is back.
        first.kill(SIGKILL)
        try await TestServer.waitUntil("the push to notice", timeout: .seconds(10)) {
            (try await Self.list(server, "live/src")).first?["state"] as? String == "retrying"
        }
        try await Task.sleep(for: .seconds(2))
        let second = try Self.listener(port: port, file: dir.appendingPathComponent("2.flv").path)
        defer { second.kill() }
        let p2 = try await Self.recorded(dir.appendingPathComponent("2.flv").path)
        #expect(p2.video?.codec_name == "h264" && p2.audio?.codec_name == "aac", "\(p2.streams)")
        pushes = try await Self.list(server, "live/src")
        print("push after the restart: \(pushes)")
        #expect(pushes.first?["state"] as? String == "publishing" && (pushes.first?["connects"] as? Int ?? 0) >= 2
                && (pushes.first?["lastError"] as? String)?.isEmpty == false, "\(pushes)")
        // Stopped by the operator: gone from the list.
        let gone = try await HTTPGet.fetch(port: server.ports.http, "/api/v1/streams/live/src/pushes/p1", method: "DELETE",
                                           headers: ["Authorization": "Bearer \(Self.token)"])
        #expect(gone.status == 200)
        #expect(try await Self.list(server, "live/src").isEmpty)
    }

    /// A push from the config starts with the server and waits for its stream.
    @Test func aPushFromTheConfigWaitsForItsStream() async throws {
        let port = try Self.freeTCPPort()
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("config-push-\(UUID().uuidString).flv").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        let listener = try Self.listener(port: port, file: file)
        defer { listener.kill() }
        let server = try await TestServer.start {
            $0.pushes = [PushEntry(stream: .init(app: "live", stream: "later")!, url: "rtmp://127.0.0.1:\(port)/live/target")]
        }
        defer { Task { await server.stop() } }
        try await Task.sleep(for: .seconds(1))
        #expect(try await Self.list(server, "live/later").first?["state"] as? String == "waiting")
        let source = try Tool.publisher(url: "\(server.rtmpURL)/live/later", seconds: 30)
        defer { source.kill() }
        let p = try await Self.recorded(file)
        #expect(p.video?.codec_name == "h264" && p.audio?.codec_name == "aac", "\(p.streams)")
    }

    @Test func badRequestsGetClearErrors() async throws {
        let server = try await TestServer.start { $0.apiToken = Self.token }
        defer { Task { await server.stop() } }
        let cases: [(String, String?, Int, String)] = [
            (#"{"url": "http://example.com/live/key"}"#, Self.token, 400, "must start with rtmp:"),
            (#"{"url": "rtmps://example.com/live/key"}"#, Self.token, 400, "rtmps"),
            (#"{"url": "rtmp://example.com/key"}"#, Self.token, 400, "application and a stream key"),
            (#"{"url": "rtmp://:1935/live/key"}"#, Self.token, 400, "no host"),
            (#"{"nope": 1}"#, Self.token, 400, "the body is"),
            ("not json", Self.token, 400, "the body is"),
            (#"{"url": "rtmp://127.0.0.1/live/key"}"#, nil, 401, "Authorization: Bearer"),
            (#"{"url": "rtmp://127.0.0.1/live/key"}"#, "wrong", 401, "wrong API token"),
        ]
        for (body, token, status, words) in cases {
            let r = try await Self.push(server, "live/a", body, token: token)
            #expect(r.status == status && r.text.contains(words), "\(body): \(r.status) \(r.text)")
        }
        let badName = try await Self.push(server, "live/bad%20name", #"{"url": "rtmp://127.0.0.1/live/key"}"#)
        #expect(badName.status == 400)
        let unknown = try await HTTPGet.fetch(port: server.ports.http, "/api/v1/streams/live/a/pushes/p9", method: "DELETE",
                                              headers: ["Authorization": "Bearer \(Self.token)"])
        #expect(unknown.status == 404 && unknown.text.contains("no push p9"))
        // Nothing listens on the target: the push is listed, failing and retrying, with the reason.
        let port = try Self.freeTCPPort()
        let source = try Tool.publisher(url: "\(server.rtmpURL)/live/a", seconds: 20)
        defer { source.kill() }
        try await server.waitForStream(.init(app: "live", stream: "a")!)
        #expect(try await Self.push(server, "live/a", #"{"url": "rtmp://127.0.0.1:\#(port)/live/key"}"#).status == 201)
        try await TestServer.waitUntil("the push to fail", timeout: .seconds(10)) {
            let p = try await Self.list(server, "live/a").first
            return p?["state"] as? String == "retrying" && (p?["lastError"] as? String ?? "").contains("cannot connect to 127.0.0.1:\(port): connection refused")
        }
    }
}
