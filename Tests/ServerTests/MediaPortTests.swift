import Foundation
import NIOCore
import NIOPosix
import Server
import STUN
import Testing
import TestSupport

/// The media port against bad input, with raw sockets standing in for peers: one good session (a client that
/// answers like a browser) keeps being served whatever others send.
@Suite(.serialized, .timeLimit(.minutes(5))) struct MediaPortTests {
    static let offer = """
        v=0\r
        o=- 1 2 IN IP4 127.0.0.1\r
        s=-\r
        t=0 0\r
        a=group:BUNDLE 0\r
        m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r
        c=IN IP4 0.0.0.0\r
        a=mid:0\r
        a=ice-ufrag:cliU\r
        a=ice-pwd:clientpassword0123456789\r
        a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r
        a=setup:actpass\r
        a=sctp-port:5000\r

        """

    struct Probe {
        var id: String
        var ufrag: String
        var password: String
        var answer: String
    }

    static func openProbe(_ server: TestServer, offer: String = offer, transport: String = "all") async throws -> Probe {
        let r = try await HTTPGet.fetch(port: server.ports.http, "/api/v1/rtc/probe?transport=\(transport)", method: "POST",
                                        headers: ["Content-Type": "application/sdp"], body: offer)
        guard r.status == 201 else { throw TestFailure("probe: \(r.status) \(r.text)") }
        func attr(_ name: String) -> String? {
            r.text.components(separatedBy: "\r\n").first { $0.hasPrefix("a=\(name):") }.map { String($0.dropFirst(name.count + 3)) }
        }
        let location = try #require(r.headers["location"])
        return Probe(id: String(location.split(separator: "/").last!), ufrag: try #require(attr("ice-ufrag")),
                     password: try #require(attr("ice-pwd")), answer: r.text)
    }

    static func status(_ server: TestServer, _ probe: Probe) async throws -> [String: Any] {
        let r = try await HTTPGet.fetch(port: server.ports.http, "/api/v1/rtc/probe/\(probe.id)")
        return try #require(try JSONSerialization.jsonObject(with: r.body) as? [String: Any])
    }

    static func check(_ probe: Probe, username: String? = nil, password: String? = nil, useCandidate: Bool = true) -> [UInt8] {
        var m = Message(type: .bindingRequest, transactionID: (0..<12).map { _ in UInt8.random(in: 0...255) })
            .adding(.username, Array((username ?? "\(probe.ufrag):cliU").utf8))
            .adding(.priority, [0x6E, 0x7F, 0x1E, 0xFF])
            .adding(.iceControlling, [UInt8](repeating: 1, count: 8))
        if useCandidate { m = m.adding(.useCandidate, []) }
        return m.encode(integrityKey: Array((password ?? probe.password).utf8), fingerprint: true)
    }

    /// A DTLS-looking record (content type 22, handshake).
    static let dtls: [UInt8] = [22, 0xFE, 0xFD] + [UInt8](repeating: 0, count: 10) + [0, 4, 1, 2, 3, 4]

    /// The good peer: a valid nominating check answered with success, then DTLS packets counted by the session.
    static func connectGoodPeer(_ server: TestServer, _ probe: Probe) async throws -> UDPTestClient {
        let good = try await UDPTestClient.open()
        try await good.send(check(probe), to: server.ports.rtcUDP)
        let reply = try #require(await good.receive(timeout: .seconds(2)), "no answer to a valid check")
        let response = try Message(parsing: reply)
        #expect(response.type == .bindingSuccess)
        #expect(response.messageIntegrityIsValid(key: Array(probe.password.utf8)) == true)
        #expect(try response.xorMappedAddress() == Address(ip: [127, 0, 0, 1], port: UInt16(good.localPort)))
        return good
    }

    /// The good session after an attack: still connected to the good peer, its next check answered, its DTLS
    /// packets delivered.
    static func goodSessionStillServed(_ server: TestServer, _ probe: Probe, _ good: UDPTestClient) async throws {
        let before = try await status(server, probe)["dtlsPackets"] as? Int ?? -1
        try await good.send(check(probe), to: server.ports.rtcUDP)
        var answered = false
        while let reply = await good.receive(timeout: .seconds(2)) {
            if (try? Message(parsing: reply))?.type == .bindingSuccess { answered = true; break }
        }
        #expect(answered, "the good peer's check was not answered")
        for _ in 0..<5 { try await good.send(dtls, to: server.ports.rtcUDP) }
        try await server.waitUntil("the good session's DTLS packets", timeout: .seconds(5)) {
            (try await status(server, probe)["dtlsPackets"] as? Int ?? 0) >= before + 5
        }
        let s = try await status(server, probe)
        #expect(s["state"] as? String == "connected")
        #expect(s["selected"] as? String == "udp 127.0.0.1:\(good.localPort)")
    }

    @Test func answerIsICELiteWithTheMediaPortsCandidates() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let probe = try await Self.openProbe(server)
        let lines = probe.answer.components(separatedBy: "\r\n")
        #expect(lines.contains("a=ice-lite"))
        #expect(lines.contains("a=setup:passive"))
        let fingerprint = try #require(lines.first { $0.hasPrefix("a=fingerprint:sha-256 ") })
        #expect(fingerprint.count == "a=fingerprint:sha-256 ".count + 32 * 3 - 1 && !Self.offer.contains(fingerprint))
        #expect(lines.contains("a=candidate:1 1 udp 2130706431 127.0.0.1 \(server.ports.rtcUDP) typ host"))
        #expect(lines.contains { $0.hasPrefix("a=candidate:") && $0.hasSuffix("127.0.0.1 \(server.ports.rtcTCP ?? 0) typ host tcptype passive") })
        let udpOnly = try await Self.openProbe(server, transport: "udp").answer
        #expect(!udpOnly.contains("tcptype") && udpOnly.contains(" udp "))
        let tcpOnly = try await Self.openProbe(server, transport: "tcp").answer
        #expect(tcpOnly.contains("tcptype passive") && !tcpOnly.contains(" udp "))
    }

    @Test(arguments: [
        ("not SDP", "hello"),
        ("no ICE credentials", "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"),
        ("bad ufrag", offer.replacingOccurrences(of: "ice-ufrag:cliU", with: "ice-ufrag:c")),
        ("no DataChannel", offer.replacingOccurrences(of: "m=application 9 UDP/DTLS/SCTP webrtc-datachannel", with: "m=audio 9 UDP/TLS/RTP/SAVPF 111")),
        ("garbage m-line", offer.replacingOccurrences(of: "m=application 9", with: "m=application x")),
        ("no fingerprint", offer.replacingOccurrences(of: "a=fingerprint:sha-256", with: "a=x-fingerprint:sha-256")),
        ("sha-1 fingerprint", offer.replacingOccurrences(of: "a=fingerprint:sha-256 00:11:22:33:", with: "a=fingerprint:sha-1 ")),
        ("setup passive", offer.replacingOccurrences(of: "a=setup:actpass", with: "a=setup:passive")),
    ])
    func badOffersAre400(_ name: String, _ body: String) async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let r = try await HTTPGet.fetch(port: server.ports.http, "/api/v1/rtc/probe", method: "POST", body: body)
        #expect(r.status == 400, "\(name): \(r.status) \(r.text)")
        let transport = try await HTTPGet.fetch(port: server.ports.http, "/api/v1/rtc/probe?transport=sctp", method: "POST", body: Self.offer)
        #expect(transport.status == 400)
        #expect(try await HTTPGet.fetch(port: server.ports.http, "/api/v1/rtc/probe/999").status == 404)
    }

    /// Random datagrams of every kind, from a stranger: no reply, nothing delivered, the good session unharmed.
    @Test func randomBytesAreDropped() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let probe = try await Self.openProbe(server)
        let good = try await Self.connectGoodPeer(server, probe)
        defer { good.close() }
        let stranger = try await UDPTestClient.open()
        defer { stranger.close() }
        var rng = SplitMix64(state: 0x1CE)
        for i in 0..<2000 {
            var bytes = (0..<(1 + Int(rng.next() % 300))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            // Cover each first-byte range (STUN, DTLS, RTP, other), STUN-looking ones with the magic cookie.
            bytes[0] = [0, 1, 22, 128, 200, 64][i % 6]
            if bytes.count >= 8 && bytes[0] < 4 { bytes.replaceSubrange(4..<8, with: [0x21, 0x12, 0xA4, 0x42]) }
            try await stranger.send(bytes, to: server.ports.rtcUDP)
        }
        #expect(await stranger.receive(timeout: .milliseconds(500)) == nil, "random bytes got an answer")
        try await Self.goodSessionStillServed(server, probe, good)
        #expect((try await Self.status(server, probe)["validated"] as? [String])?.count == 1)
    }

    /// A check with the right ufrag and a wrong password: 401, no MESSAGE-INTEGRITY, no state; the stranger's
    /// DTLS is then dropped because its address was never validated.
    @Test func wrongPasswordGets401AndNoState() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let probe = try await Self.openProbe(server)
        let good = try await Self.connectGoodPeer(server, probe)
        defer { good.close() }
        let checksBefore = try await Self.status(server, probe)["checks"] as? Int
        let stranger = try await UDPTestClient.open()
        defer { stranger.close() }
        try await stranger.send(Self.check(probe, password: "wrongpassword0123456789x"), to: server.ports.rtcUDP)
        let reply = try #require(await stranger.receive(timeout: .seconds(2)))
        let response = try Message(parsing: reply)
        let code = try response.errorCode()?.code
        #expect(response.type == .bindingError && code == 401)
        #expect(!response.hasMessageIntegrity)
        let dtlsBefore = try await Self.status(server, probe)["dtlsPackets"] as? Int
        for _ in 0..<5 { try await stranger.send(Self.dtls, to: server.ports.rtcUDP) }
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await Self.status(server, probe)["dtlsPackets"] as? Int == dtlsBefore, "a stranger's DTLS reached the session")
        try await Self.goodSessionStillServed(server, probe, good)
        let s = try await Self.status(server, probe)
        #expect(s["validated"] as? [String] == ["udp 127.0.0.1:\(good.localPort)"])
        #expect(s["checks"] as? Int == (checksBefore ?? 0) + 1, "only the good peer's check counted")
    }

    @Test func unknownUfragGets401() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let probe = try await Self.openProbe(server)
        let good = try await Self.connectGoodPeer(server, probe)
        defer { good.close() }
        let stranger = try await UDPTestClient.open()
        defer { stranger.close() }
        try await stranger.send(Self.check(probe, username: "nobody:cliU"), to: server.ports.rtcUDP)
        let response = try Message(parsing: try #require(await stranger.receive(timeout: .seconds(2))))
        #expect(try response.errorCode()?.code == 401)
        try await Self.goodSessionStillServed(server, probe, good)
    }

    /// One address sends 30,000 packets as fast as it can: media from an unknown source, bad checks, garbage.
    /// The good session keeps its pair and gets its packets; the port counts the drops.
    @Test func floodFromOneAddress() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let probe = try await Self.openProbe(server)
        let good = try await Self.connectGoodPeer(server, probe)
        defer { good.close() }
        let flooder = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        defer { flooder.close(promise: nil) }
        let to = try SocketAddress(ipAddress: "127.0.0.1", port: server.ports.rtcUDP)
        let kinds: [[UInt8]] = [Self.dtls, [0x80, 0x60] + [UInt8](repeating: 7, count: 170),
                                Self.check(probe, password: "wrongpassword0123456789x"), [UInt8](repeating: 0xEE, count: 64)]
        let started = ContinuousClock.now
        for i in 0..<30_000 {
            flooder.write(AddressedEnvelope(remoteAddress: to, data: ByteBuffer(bytes: kinds[i % kinds.count])), promise: nil)
            if i % 64 == 63 { try await flooder.writeAndFlush(AddressedEnvelope(remoteAddress: to, data: ByteBuffer(bytes: Self.dtls))).get() }
            if i % 5000 == 0 { try await good.send(Self.dtls, to: server.ports.rtcUDP) }
        }
        flooder.flush()
        let sent = ContinuousClock.now - started
        try await Self.goodSessionStillServed(server, probe, good)
        let dropped = try await server.metric("liveswarm_rtc_dropped_packets_total") ?? 0
        print("flood: 30,000 datagrams sent in \(sent); the port counted \(Int(dropped)) dropped; the good session kept its pair")
        #expect(dropped > 1000, "drops are counted")
    }

    /// ICE-TCP: checks framed as RFC 4571 connect; a connection that starts with anything but a valid check is
    /// closed, and one that never sends a check is closed after the validation timeout.
    @Test func iceTCPFramingAndBadConnections() async throws {
        let server = try await TestServer.start { $0.rtc.tcpValidationTimeout = .seconds(1) }
        defer { Task { await server.stop() } }
        let probe = try await Self.openProbe(server, transport: "tcp")
        let port = try #require(server.ports.rtcTCP)
        func framed(_ b: [UInt8]) -> ByteBuffer {
            var out = ByteBuffer()
            out.writeInteger(UInt16(b.count))
            out.writeBytes(b)
            return out
        }
        let tcp = try await TCPTestClient.connect(port: port)
        // Split across writes: the framer must reassemble.
        let frame = framed(Self.check(probe))
        try await tcp.send(frame.getSlice(at: 0, length: 7)!)
        try await Task.sleep(for: .milliseconds(50))
        try await tcp.send(frame.getSlice(at: 7, length: frame.readableBytes - 7)!)
        var got = ByteBuffer()
        while got.readableBytes < 2 || got.readableBytes < 2 + Int(got.getInteger(at: 0, as: UInt16.self)!) {
            guard var b = await tcp.receive(timeout: .seconds(2)) else { break }
            got.writeBuffer(&b)
        }
        let length = got.readInteger(as: UInt16.self).map(Int.init) ?? 0
        let body = got.readBytes(length: length)
        let response = try Message(parsing: try #require(body, "no framed response"))
        #expect(response.type == .bindingSuccess)
        try await tcp.send(framed(Self.dtls))
        try await server.waitUntil("DTLS over ICE-TCP", timeout: .seconds(5)) {
            (try await Self.status(server, probe)["dtlsPackets"] as? Int ?? 0) >= 1
        }
        #expect((try await Self.status(server, probe)["selected"] as? String)?.hasPrefix("tcp 127.0.0.1:") == true)

        let media = try await TCPTestClient.connect(port: port)
        try await media.send(framed(Self.dtls))
        #expect(await media.closesWithin(.seconds(3)), "media before a check closes the connection")
        let silent = try await TCPTestClient.connect(port: port)
        #expect(await silent.closesWithin(.seconds(4)), "no check within the validation timeout closes the connection")
        await tcp.close()
        try await server.waitUntil("the session to forget the closed connection", timeout: .seconds(5)) {
            (try await Self.status(server, probe)["validated"] as? [String])?.isEmpty == true
        }
    }
}
