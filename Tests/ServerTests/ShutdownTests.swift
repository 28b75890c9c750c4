import DTLS
import Foundation
import NIOCore
import RTMP
import RTP
import STUN
import Testing
import TestSupport

/// SIGTERM with 500 clients on every protocol (issue 23: 150 RTMP and 150 HTTP-FLV viewers, 50 WHEP viewers, 50
/// blocked LL-HLS reloads, 50 room participants, 25 tracker WebSockets, 25 TURN allocations): the binary ends every
/// one of them within 5 s, without waiting out any grace period (republish, room seat, TURN allocation), says
/// goodbye where the protocol has a way to (RTCP BYE and DTLS close_notify to WebRTC peers, WebSocket close 1001 "going away" to room and tracker
/// clients), and exits 0.
extension CommandLineTests {
    @Test func sigtermWithFiveHundredClientsEndsEveryOneWithinFiveSeconds() async throws {
        // The test's WebRTC peers send no consent checks after the first: consent is made to outlast the setting up,
        // which takes minutes on an AddressSanitizer build of a loaded machine, so that every session is open at the
        // signal.
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("liveswarm-shutdown-\(UUID().uuidString).yaml")
        try "rtc:\n  consent_timeout_seconds: 600\n".write(to: config, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: config) }
        let (t, http, rtmp) = try await start(["--config", config.path, "--no-rate-limits", "--turn-user", "shut:down-pass"])
        defer { t.kill() }
        let (media, stun) = try Self.mediaAndSTUNPorts(t)

        // The stream: ffmpeg (H.264 and AAC, a keyframe a second) until it is paused before the signal.
        let publisher = try Tool.publisher(url: "rtmp://127.0.0.1:\(rtmp)/live/bye", seconds: 120, gop: 15, size: "320x240", fps: 15)
        defer { publisher.kill() }
        try await TestServer.waitUntil("two HLS segments", timeout: .seconds(20)) {
            (try? await HTTPGet.fetch(port: http, "/live/bye/index.m3u8"))?.text.components(separatedBy: "#EXTINF").count ?? 0 >= 3
        }

        var tcp: [(String, TCPTestClient)] = []
        for _ in 0..<150 {
            let viewer = try await RTMPTestClient.connect(port: rtmp)
            try await viewer.connectApp()
            try await viewer.command("createStream")
            _ = try await viewer.expectCommand(["_result"])
            try await viewer.command("play", ["bye"], streamID: 1)
            tcp.append(("RTMP", viewer.tcp))
        }
        for _ in 0..<150 { tcp.append(("HTTP-FLV", try await FLVTestClient.open(port: http, path: "/live/bye.flv").tcp)) }
        var webRTC: [SFUForwardingTests.Peer] = []
        for _ in 0..<50 {
            webRTC.append(try await SFUForwardingTests.connect(http: http, media: media, path: "/whep/live/bye", offer: WHIPTests.playOffer))
        }
        // LL-HLS: each asks for the segment after the ones listed (a blocking reload), which the paused publisher
        // never completes: the requests are still waiting at the signal.
        kill(publisher.process.processIdentifier, SIGSTOP)
        defer { kill(publisher.process.processIdentifier, SIGCONT) }
        try await Task.sleep(for: .milliseconds(300))
        let playlist = try await HTTPGet.fetch(port: http, "/live/bye/index.m3u8").text
        let sequence = try #require(playlist.split(separator: "\n").first { $0.hasPrefix("#EXT-X-MEDIA-SEQUENCE:") }
            .flatMap { Int($0.dropFirst("#EXT-X-MEDIA-SEQUENCE:".count)) })
        let next = sequence + playlist.components(separatedBy: "#EXTINF").count - 1 + 1
        for _ in 0..<50 {
            let c = try await TCPTestClient.connect(port: http)
            try await c.send("GET /live/bye/index.m3u8?_HLS_msn=\(next) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            tcp.append(("LL-HLS", c))
        }
        var rooms: [WebSocketTestClient] = []
        for i in 0..<50 {
            let c = try await WebSocketTestClient.connect(port: http, path: "/ws")
            c.send(RoomEndpointTests.json(["type": "join", "version": 1, "room": "bye\(i / 10)", "name": "p\(i)"]))
            #expect(try RoomEndpointTests.object(try await c.text())["type"] as? String == "joined")
            rooms.append(c)
        }
        var trackers: [WebSocketTestClient] = []
        for _ in 0..<25 { trackers.append(try await WebSocketTestClient.connect(port: http, path: "/tracker")) }
        var relays: [TURNSecurityTests.Client] = []
        for _ in 0..<25 {
            let c = try TURNSecurityTests.Client(port: stun, user: "shut", password: "down-pass")
            let r = try c.request(.allocate, [(.requestedTransport, [17, 0, 0, 0])])
            #expect(r.type.messageClass == .successResponse, "\(String(describing: try? r.errorCode()))")
            relays.append(c)
        }
        #expect(tcp.count + webRTC.count + rooms.count + trackers.count + relays.count == 500)
        // The blocked reloads are still waiting.
        for (_, c) in tcp.suffix(50) { #expect(c.channel.isActive) }

        let signalled = ContinuousClock.now
        t.kill(SIGTERM)
        let status = await t.wait(timeout: .seconds(10))
        let took = ContinuousClock.now - signalled
        print("SIGTERM with 500 clients: exit \(String(describing: status)) after \(took)")
        #expect(status == 0, "exit status: \(t.output.suffix(1500)) \(t.errorOutput.suffix(500))")
        #expect(took < .seconds(5), "the server took \(took) to stop")

        // Every TCP connection was closed by the server.
        var open: [String: Int] = [:]
        for (kind, c) in tcp where await !c.closesWithin(.seconds(1)) { open[kind, default: 0] += 1 }
        #expect(open.isEmpty, "still open after the exit: \(open)")
        // Every WebRTC viewer heard an RTCP BYE for the SSRCs it was sent, and DTLS close_notify.
        var byes = 0, closeNotifies = 0
        for peer in webRTC {
            let (bye, closed) = try await Self.goodbye(peer)
            if bye { byes += 1 }
            if closed { closeNotifies += 1 }
        }
        #expect(byes == webRTC.count && closeNotifies == webRTC.count, "BYE \(byes), close_notify \(closeNotifies) of \(webRTC.count)")
        // Room and tracker clients were told the server is going away.
        for (what, clients) in [("room", rooms), ("tracker", trackers)] {
            var codes: [String: Int] = [:]
            for c in clients {
                var code: UInt16?? = nil
                while code == nil, let event = await c.next(timeout: .seconds(2)) {
                    if case .closed(let c) = event { code = .some(c) }
                }
                codes["\(code.map { $0.map(String.init) ?? "no close frame" } ?? "not closed")", default: 0] += 1
            }
            #expect(codes == ["1001": clients.count], "\(what) clients' close codes: \(codes)")
        }
        for c in rooms + trackers { c.close() }
        for peer in webRTC { peer.link.close() }
    }

    /// Reads what the server sent a WebRTC viewer until its DTLS association closes: whether an RTCP BYE came
    /// (naming every SSRC the viewer was sent RTP on) and whether close_notify did.
    static func goodbye(_ peer: SFUForwardingTests.Peer) async throws -> (bye: Bool, closeNotify: Bool) {
        let dtls = try #require(peer.dtls)
        var sent = Set<UInt32>(), named = Set<UInt32>(), closed = false
        while !closed, let p = await peer.link.receive(timeout: .seconds(1)), let first = p.first {
            if (20...63).contains(first) {
                if case .closed? = dtls.receive(p).stateChanged { closed = true }
            } else if (128...191).contains(first) {
                var packet = p
                if RTPPacket.isRTCP(packet) {
                    guard (try? peer.unprotect.unprotectRTCP(&packet)) != nil else { continue }
                    for case .goodbye(let bye) in (try? RTCPPacket.parseCompound(packet)) ?? [] { named.formUnion(bye.ssrcs) }
                } else if packet.count >= 12 {
                    sent.insert(UInt32(packet[8]) << 24 | UInt32(packet[9]) << 16 | UInt32(packet[10]) << 8 | UInt32(packet[11]))
                }
            }
        }
        return (!named.isEmpty && sent.isSubset(of: named), closed)
    }
}
