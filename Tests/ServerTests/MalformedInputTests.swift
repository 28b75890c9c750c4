import AMF0
import Foundation
import NIOCore
import RTMP
import Server
import StreamHub
import Testing

/// Bad input gets a clean close or the right onStatus error, and a stream others are watching goes on.
@Suite(.serialized, .timeLimit(.minutes(5))) struct MalformedInputTests {
    static let publishKey = "s3cret"

    enum Case: String, CaseIterable, Sendable {
        case httpInsteadOfHandshake, garbageAfterHandshake, chunkSizeZero, chunkSize2To31, truncatedChunkThenHangUp,
             truncatedChunkThenSilence, messageLength16MB, unknownAMF0Type, publishWithoutConnect, playMissingStream,
             secondPublisher, badStreamKey, missingStreamKey
    }

    /// A server with a live stream (synthetic, 25 fps) and one HTTP-FLV viewer watching it.
    struct Fixture {
        let server: TestServer
        let publisher: RTMPTestClient
        let feeder: Task<Void, any Error>
        let viewer: FLVTestClient

        static func start() async throws -> Fixture {
            let server = try await TestServer.start {
                $0.rtmp.authentication.keys = [MalformedInputTests.publishKey]
                $0.rtmp.handshakeTimeout = .seconds(2)
            }
            let publisher = try await RTMPTestClient.connect(port: server.ports.rtmp)
            #expect(try await publisher.publish("watched?key=\(publishKey)") == "NetStream.Publish.Start")
            let feeder = try await publisher.feedVideo(gop: 1)
            try await server.waitForStream(StreamKey(app: "live", stream: "watched")!)
            let viewer = try await FLVTestClient.open(port: server.ports.http, path: "/live/watched.flv")
            return Fixture(server: server, publisher: publisher, feeder: feeder, viewer: viewer)
        }

        /// The viewer receives new frames within a second.
        func stillWatching() async throws -> Bool {
            let before = viewer.tags.count
            return try await viewer.read(until: { $0.tags.count >= before + 10 }, timeout: .seconds(3))
        }

        func stop() async {
            feeder.cancel()
            await viewer.close()
            await publisher.tcp.close()
            await server.stop()
        }
    }

    static func chunk(_ header: [UInt8], _ body: [UInt8] = []) -> ByteBuffer { ByteBuffer(bytes: header + body) }

    @Test(arguments: Case.allCases)
    func badInputIsRefusedAndOthersKeepWatching(_ c: Case) async throws {
        let f = try await Fixture.start()
        let port = f.server.ports.rtmp
        let bad = try await RTMPTestClient.connect(port: port)
        var status: String?
        switch c {
        case .httpInsteadOfHandshake:
            // The server may close on the first byte ('G' is no RTMP version) before the rest is written: that write
            // then fails, which is the refusal this case is about.
            try? await bad.tcp.send("GET /live/watched HTTP/1.1\r\nHost: x\r\n\r\n")
        case .garbageAfterHandshake:
            try await bad.handshake()
            var junk = ByteBuffer()
            for i in 0..<4096 { junk.writeInteger(UInt8(truncatingIfNeeded: i &* 7919 &+ 0x41)) }
            try await bad.tcp.send(junk)
        case .chunkSizeZero, .chunkSize2To31:
            try await bad.connectApp()
            var size = ByteBuffer()
            size.writeInteger(UInt32(c == .chunkSizeZero ? 0 : 0x8000_0000))
            try await bad.send(Message(type: .setChunkSize, payload: size), csid: 2)
        case .truncatedChunkThenHangUp:
            try await bad.handshake()
            try await bad.tcp.send(Self.chunk([0x03, 0, 0, 0, 0, 0x01, 0x00, 0x14, 0, 0, 0, 0], [0x02, 0x00]))
            await bad.tcp.close()
        case .truncatedChunkThenSilence:
            try await bad.handshake()
            try await bad.tcp.send(Self.chunk([0x03, 0, 0, 0, 0, 0x01, 0x00, 0x14, 0, 0, 0, 0], [0x02, 0x00]))
        case .messageLength16MB:
            try await bad.connectApp()
            try await bad.tcp.send(Self.chunk([0x04, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0x09, 1, 0, 0, 0], [UInt8](repeating: 0, count: 128)))
        case .unknownAMF0Type:
            try await bad.handshake()
            try await bad.send(Message(type: .commandAMF0, payload: ByteBuffer(bytes: [0x02, 0, 7] + Array("connect".utf8) + [0x42, 0, 0])))
        case .publishWithoutConnect:
            try await bad.handshake()
            try await bad.command("publish", ["intruder"], streamID: 1)
        case .playMissingStream:
            try await bad.connectApp()
            try await bad.command("createStream")
            _ = try await bad.expectCommand(["_result"])
            try await bad.command("play", ["nothing-here"], streamID: 1)
            status = try await bad.nextStatus()
            #expect(status == "NetStream.Play.StreamNotFound")
        case .secondPublisher:
            status = try await bad.publish("watched?key=\(Self.publishKey)")
            #expect(status == "NetStream.Publish.BadName")
        case .badStreamKey:
            status = try await bad.publish("other?key=wrong")
            #expect(status == "NetStream.Publish.Denied")
        case .missingStreamKey:
            status = try await bad.publish("other")
            #expect(status == "NetStream.Publish.Denied")
        }
        if c != .truncatedChunkThenHangUp {
            #expect(await bad.tcp.closesWithin(.seconds(5)), "the server closes the bad connection")
        }
        #expect(try await f.stillWatching(), "the watched stream keeps flowing after \(c)")
        // The server still accepts new publishers and viewers.
        let next = try await RTMPTestClient.connect(port: port)
        #expect(try await next.publish("after-\(c.rawValue)?key=\(Self.publishKey)") == "NetStream.Publish.Start")
        await next.tcp.close()
        #expect(f.server.swarm.hub.source(StreamKey(app: "live", stream: "watched")!)?.isPublished == true)
        await f.stop()
    }

    @Test func httpErrors() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        for (path, status) in [("/live/missing.flv", 404), ("/live/bad%20name.flv", 400), ("/live/x.mp4", 404),
                               ("/api/v1/streams/live/missing", 404)] {
            let tcp = try await TCPTestClient.connect(port: server.ports.http)
            try await tcp.send("GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n")
            let head = await tcp.receive().map { String(buffer: $0) } ?? ""
            #expect(head.hasPrefix("HTTP/1.1 \(status)"), "\(path): \(head.prefix(40))")
            await tcp.close()
        }
    }

    @Test func connectionFloodIsCappedAndSilentClientsAreDropped() async throws {
        let server = try await TestServer.start {
            $0.rtmp.maxConnections = 20
            $0.rtmp.handshakeTimeout = .seconds(1)
        }
        defer { Task { await server.stop() } }
        // 20 clients that connect and say nothing fill the limit; the next ones are closed at once.
        var silent: [TCPTestClient] = []
        for _ in 0..<20 { silent.append(try await TCPTestClient.connect(port: server.ports.rtmp)) }
        try await Task.sleep(for: .milliseconds(200))
        let extra = try await TCPTestClient.connect(port: server.ports.rtmp)
        #expect(await extra.closesWithin(.seconds(2)), "a connection beyond the limit is closed")
        // The silent ones are dropped after the handshake timeout, and the server takes publishers again.
        for c in silent { #expect(await c.closesWithin(.seconds(4))) }
        let p = try await RTMPTestClient.connect(port: server.ports.rtmp)
        #expect(try await p.publish("after-flood") == "NetStream.Publish.Start")
        await p.tcp.close()
    }

    @Test func idlePublisherIsDisconnected() async throws {
        let server = try await TestServer.start { $0.rtmp.publishIdleTimeout = .seconds(1) }
        defer { Task { await server.stop() } }
        let p = try await RTMPTestClient.connect(port: server.ports.rtmp)
        #expect(try await p.publish("quiet") == "NetStream.Publish.Start")
        try await p.sendVideo(from: 0, count: 3, config: true)
        #expect(await p.tcp.closesWithin(.seconds(4)))
        try await server.waitUntil("the stream to be freed") { server.swarm.hub.source(StreamKey(app: "live", stream: "quiet")!)?.isPublished != true }
    }
}
