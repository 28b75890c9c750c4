import Foundation
import NIOCore
import Server
import Testing

/// The HTTP port's caps: a request over a limit gets its status (414, 431, 413) or, for bytes that are not
/// HTTP, a 400, and its connection is closed at once; the server goes on answering everyone else, WebSocket
/// upgrades included. Before, a head over swift-nio's decoder limit left the connection open and unanswered.
@Suite(.serialized, .timeLimit(.minutes(1))) struct HTTPLimitsTests {
    /// Sends `bytes` on a fresh connection; returns the status of what came back (0: nothing), and whether the
    /// server closed the connection within 3 s.
    static func send(_ bytes: [UInt8], port: Int) async throws -> (status: Int, closed: Bool, retryAfter: Int?) {
        let tcp = try await TCPTestClient.connect(port: port)
        // The server may close before all of a large request is written: that write then fails, which is fine.
        try? await tcp.send(ByteBuffer(bytes: bytes))
        var got = ByteBuffer()
        while !String(buffer: got).contains("\r\n\r\n"), var b = await tcp.receive(timeout: .seconds(3)) { got.writeBuffer(&b) }
        let lines = String(buffer: got).components(separatedBy: "\r\n")
        let status = lines.first?.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        let retryAfter = lines.first { $0.lowercased().hasPrefix("retry-after:") }.flatMap { Int($0.dropFirst(12).trimmingCharacters(in: .whitespaces)) }
        // An upgraded WebSocket stays open: it is closed here.
        let closed = status == 101 ? true : await tcp.closesWithin(.seconds(3))
        await tcp.close()
        return (status, closed, retryAfter)
    }

    static func request(_ target: String, headers: String = "", body: [UInt8] = []) -> [UInt8] {
        Array("GET \(target) HTTP/1.1\r\nHost: x\r\n\(headers)\r\n".utf8) + body
    }

    @Test func requestsOverTheLimitsAreAnsweredAndClosed() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let port = server.ports.http
        let limits = HTTPLimits()
        let chunk = Array("10000\r\n".utf8) + [UInt8](repeating: 0x61, count: 0x10000) + Array("\r\n".utf8)
        let cases: [(String, [UInt8], Int)] = [
            ("a URL over the limit", Self.request("/api/v1/streams?" + String(repeating: "a", count: limits.maxURLBytes)), 414),
            ("a URL over the head's limit", Self.request("/" + String(repeating: "a", count: 100_000)), 431),
            ("a header over the head's limit", Self.request("/api/v1/streams", headers: "X-Big: \(String(repeating: "a", count: limits.maxHeadBytes))\r\n"), 431),
            ("too many header fields", Self.request("/api/v1/streams", headers: (0...limits.maxHeaderFields).map { "X-\($0): 1\r\n" }.joined()), 431),
            ("a Content-Length over the limit", Self.request("/api/v1/streams", headers: "Content-Length: \(limits.maxBodyBytes + 1)\r\n"), 413),
            ("an SDP offer over the limit", Array("POST /whip/live/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nContent-Length: 100000000\r\n\r\nv=0\r\n".utf8), 413),
            ("bytes that are not HTTP", [0x16, 0x03, 0x01, 0x00, 0x05] + Array("hello\r\n\r\n".utf8), 400),
        ]
        for (what, bytes, status) in cases {
            let r = try await Self.send(bytes, port: port)
            #expect(r.status == status, "\(what): \(r.status)")
            #expect(r.closed, "\(what): the connection is closed")
        }
        // A chunked body that grows past the limit: the connection is closed (its route may be answering already).
        let chunked = Array("POST /api/v1/p2p/reports HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
            + (0...(limits.maxBodyBytes / 0x10000)).flatMap { _ in chunk }
        #expect(try await Self.send(chunked, port: port).closed, "a chunked body over the limit closes the connection")

        // Under the limits all is as before: a request, and a WebSocket upgrade.
        #expect(try await HTTPGet.fetch(port: port, "/api/v1/streams?" + String(repeating: "a", count: limits.maxURLBytes - 20)).status == 200)
        let upgrade = Array("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".utf8)
        let tcp = try await TCPTestClient.connect(port: port)
        try await tcp.send(ByteBuffer(bytes: upgrade))
        let answer = await tcp.receive(timeout: .seconds(3)).map { String(buffer: $0) } ?? ""
        #expect(answer.hasPrefix("HTTP/1.1 101"), "WebSocket upgrade: \(answer.prefix(40))")
        await tcp.close()
    }
}
