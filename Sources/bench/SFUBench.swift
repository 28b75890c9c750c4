import ArgumentParser
import DTLS
import Foundation
import NIOCore
import NIOPosix
import RTP
import SRTP
import STUN
import Locks

/// The SFU's forwarding cost and the memory of a viewer session, measured on a running server: one WHIP publisher
/// sends paced VP8 RTP (SRTP, with the mid and transport-cc header extensions a browser sends) and `viewers` WHEP
/// sessions receive it. Every peer is a real client of the server (ICE check, DTLS handshake, SRTP keys), built
/// from our own modules, on its own UDP socket. Prints one Markdown row: packets forwarded per second, the share
/// delivered, the server's CPU, CPU time per forwarded packet, and resident memory per viewer session.
struct SFULoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sfu")

    @Option(help: "Server host.") var host = "127.0.0.1"
    @Option(help: "Server HTTP port (WHIP/WHEP).") var httpPort = 8080
    @Option(help: "Server media port (UDP).") var rtcPort = 8000
    @Option(help: "Server process id, for CPU and memory (from /proc).") var pid: Int32
    @Option(help: "WHEP viewers.") var viewers = 10
    @Option(help: "RTP packets per second from the publisher.") var rate = 200
    @Option(help: "RTP packet size in bytes (before SRTP).") var size = 1200
    @Option(help: "Seconds of measurement.") var seconds = 10
    @Option(help: "Stream name (under live/).") var stream = "sfubench"

    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try SocketAddress(ipAddress: host, port: rtcPort)
        let http = try await HTTPConnection.open(group: group, host: host, port: httpPort)
        let publisher = try await BenchPeer.connect(group: group, http: http, path: "/whip/live/\(stream)", sending: true, server: server)
        let sent = Atomic<Int>(0)
        let sender = Task { [rate, size] in
            try await Self.send(from: publisher, rate: rate, size: size, sent: sent)
        }
        try await Task.sleep(for: .seconds(1))
        let base = ProcStats.read(pid: pid)
        var peers: [BenchPeer] = []
        for _ in 0..<viewers {
            peers.append(try await BenchPeer.connect(group: group, http: http, path: "/whep/live/\(stream)", sending: false, server: server))
        }
        try await Task.sleep(for: .seconds(2))  // every viewer's buffers filled by traffic
        let loaded = ProcStats.read(pid: pid)
        let received0 = peers.reduce(0) { $0 + $1.received.load(ordering: .relaxed) }
        let sent0 = sent.load(ordering: .relaxed)
        let before = ProcStats.read(pid: pid)
        try await Task.sleep(for: .seconds(seconds))
        let after = ProcStats.read(pid: pid)
        let received = peers.reduce(0) { $0 + $1.received.load(ordering: .relaxed) } - received0
        let published = sent.load(ordering: .relaxed) - sent0
        sender.cancel()
        _ = await sender.result
        for p in [publisher] + peers { await p.close(http: http) }
        http.close()
        try await group.shutdownGracefully()

        let wall = (after.at - before.at) / .seconds(1)
        let cpuSeconds = after.cpuSeconds - before.cpuSeconds
        let expected = published * viewers
        let perViewerKiB = viewers > 0 ? (loaded.rssMiB - base.rssMiB) * 1024 / Double(viewers) : 0
        print(String(format: "| %d | %.0f | %.0f | %.1f | %.0f | %.2f | %.0f |", viewers, Double(published) / wall,
                     Double(received) / wall, expected > 0 ? Double(received) / Double(expected) * 100 : 0,
                     cpuSeconds / wall * 100, received > 0 ? cpuSeconds / Double(received) * 1e6 : 0, perViewerKiB))
    }

    /// Paced VP8 packets (every one a keyframe start, so a viewer decodes from its first packet), in 10 ms bursts.
    static func send(from peer: BenchPeer, rate: Int, size: Int, sent: borrowing Atomic<Int>) async throws {
        let start = ContinuousClock.now
        var seq: UInt16 = 0
        var twcc: UInt16 = 0
        var count = 0
        let payload = [UInt8](repeating: 0x5A, count: max(0, size - 12 - 12 - 2))
        while !Task.isCancelled {
            let elapsed = (ContinuousClock.now - start) / .seconds(1)
            let due = Int(elapsed * Double(rate))
            while count < due {
                var h = RTPHeader(marker: count % 10 == 9, payloadType: 96, sequenceNumber: seq, timestamp: UInt32(truncatingIfNeeded: count / 10 * 3000),
                                  ssrc: BenchPeer.publisherSSRC)
                h.extensions = [.init(id: 4, value: Array("0".utf8)), .init(id: 3, value: [UInt8(twcc >> 8), UInt8(twcc & 0xFF)])]
                var packet = RTPPacket(header: h, payload: ArraySlice([0x10, 0x00] + payload)).write()
                try peer.protect?.protectRTP(&packet)
                peer.send(packet)
                seq &+= 1
                twcc &+= 1
                count += 1
                sent.add(1, ordering: .relaxed)
            }
            peer.flush()
            try await Task.sleep(until: start + .milliseconds(Int64((count + max(1, rate / 100)) * 1000 / max(1, rate))))
        }
    }
}

/// One WebRTC peer of the server on its own UDP socket: WHIP or WHEP offer, ICE check with USE-CANDIDATE, DTLS
/// client handshake, then SRTP. A viewer counts the RTP packets it receives (not decrypted: the client's CPU is
/// for receiving). A check every 5 s keeps ICE consent (RFC 7675) alive.
final class BenchPeer: ChannelInboundHandler, DatagramPeer, @unchecked Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    static let publisherSSRC: UInt32 = 0x5EED_0001
    struct Failure: Error, CustomStringConvertible { var description: String }

    let server: SocketAddress
    let received = Atomic<Int>(0)
    let counting = Atomic<Bool>(false)
    let inbox = Mutex<[[UInt8]]>([])
    private(set) var channel: (any Channel)!
    private(set) var protect: SRTPContext?
    private(set) var location: String?
    private var consent: RepeatedTask?

    init(server: SocketAddress) { self.server = server }

    static func connect(group: any EventLoopGroup, http: HTTPConnection, path: String, sending: Bool,
                        server: SocketAddress, h264: Bool = false) async throws -> BenchPeer {
        let peer = BenchPeer(server: server)
        peer.channel = try await DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
            .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(peer) } }
            .bind(host: "127.0.0.1", port: 0).get()
        let certificate = try Certificate()
        let ufrag = Self.token(8), password = Self.token(24)
        let offer = Self.offer(sending: sending, ufrag: ufrag, password: password, fingerprint: certificate.fingerprint.sdpValue, h264: h264)
        let answer = try await http.request("POST", path, contentType: "application/sdp", body: offer)
        let text = String(buffer: answer.body)
        guard answer.status == 201 else { throw Failure(description: "\(path): \(answer.status) \(text)") }
        peer.location = answer.headers["location"]
        do {
            let (keys, consent) = try await ClientHandshake.run(answer: text, ufrag: ufrag, certificate: certificate,
                                                                 eventLoop: peer.channel.eventLoop, send: peer.send, flush: peer.flush,
                                                                 next: peer.next)
            peer.consent = consent
            peer.protect = try SRTPContext(profile: keys.profile, masterKey: keys.local, direction: .outbound)
            peer.counting.store(true, ordering: .relaxed)
            return peer
        } catch let e as ClientHandshake.Failure {
            throw Failure(description: "\(path): \(e)")
        }
    }

    static func token(_ n: Int) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        return String((0..<n).map { _ in alphabet.randomElement()! })
    }

    /// A video-only VP8 (or H.264, packetization-mode 1) offer, as a browser words it (BUNDLE, rtcp-mux, mid and
    /// transport-cc extensions, NACK/PLI).
    static func offer(sending: Bool, ufrag: String, password: String, fingerprint: String, h264: Bool = false) -> String {
        var lines = ["v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0", "a=msid-semantic: WMS bench",
                     "m=video 9 UDP/TLS/RTP/SAVPF 96", "c=IN IP4 0.0.0.0", "a=rtcp:9 IN IP4 0.0.0.0",
                     "a=ice-ufrag:\(ufrag)", "a=ice-pwd:\(password)", "a=ice-options:trickle",
                     "a=fingerprint:\(fingerprint)", "a=setup:actpass", "a=mid:0",
                     "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
                     "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid", sending ? "a=sendonly" : "a=recvonly"]
        if sending { lines.append("a=msid:bench video") }
        lines += ["a=rtcp-mux", "a=rtcp-rsize", h264 ? "a=rtpmap:96 H264/90000" : "a=rtpmap:96 VP8/90000",
                  "a=rtcp-fb:96 transport-cc", "a=rtcp-fb:96 nack", "a=rtcp-fb:96 nack pli"]
        if h264 { lines.append("a=fmtp:96 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f") }
        if sending { lines += ["a=ssrc:\(publisherSSRC) cname:bench", "a=ssrc:\(publisherSSRC) msid:bench video"] }
        return lines.joined(separator: "\r\n") + "\r\n"
    }


    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data).data
        if counting.load(ordering: .relaxed) {
            // RTP (RFC 7983: first byte 128-191), not RTCP.
            guard let b0 = bytes.getInteger(at: bytes.readerIndex, as: UInt8.self), (128...191).contains(b0),
                  !RTPPacket.isRTCP(bytes.readableBytesView) else { return }
            received.add(1, ordering: .relaxed)
        } else {
            inbox.withLock { $0.append(Array(bytes.readableBytesView)) }
        }
    }

    /// Ends the session (DELETE on its Location) and closes the socket.
    func close(http: HTTPConnection) async {
        consent?.cancel()
        if let location { _ = try? await http.request("DELETE", location) }
        try? await channel.close()
    }
}

/// A bench client on its own UDP socket, talking to one server address; what arrives before it counts media waits in
/// `inbox` for the handshake.
protocol DatagramPeer: AnyObject {
    var channel: (any Channel)! { get }
    var server: SocketAddress { get }
    var inbox: Mutex<[[UInt8]]> { get }
}

extension DatagramPeer {
    func send(_ bytes: [UInt8]) {
        channel.write(AddressedEnvelope(remoteAddress: server, data: ByteBuffer(bytes: bytes)), promise: nil)
    }

    func flush() { channel.flush() }

    func next(timeout: Duration) async -> [UInt8]? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let d = inbox.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) { return d }
            try? await Task.sleep(for: .milliseconds(2))
        }
        return nil
    }
}

/// The client side of a WebRTC transport's setup against the server (ICE-lite): a Binding check with USE-CANDIDATE
/// to the address the datagrams go to (again every 5 s, for consent, RFC 7675), then the DTLS client handshake over
/// the same socket. Returns the SRTP keys and the consent task.
enum ClientHandshake {
    struct Failure: Error, CustomStringConvertible { var description: String }

    static func run(answer: String, ufrag: String, certificate: Certificate, eventLoop: any EventLoop,
                    send: @escaping @Sendable ([UInt8]) -> Void, flush: @escaping @Sendable () -> Void,
                    next: (Duration) async -> [UInt8]?) async throws -> (keys: SRTPKeys, consent: RepeatedTask) {
        func attribute(_ name: String) throws -> String {
            guard let line = answer.split(separator: "\r\n").first(where: { $0.hasPrefix("a=\(name):") }) else {
                throw Failure(description: "no a=\(name) in the answer")
            }
            return String(line.dropFirst(name.count + 3))
        }
        let serverUfrag = try attribute("ice-ufrag"), serverPassword = try attribute("ice-pwd")
        guard let fingerprint = Fingerprint(sdp: try attribute("fingerprint")) else { throw Failure(description: "bad fingerprint") }
        let check: @Sendable () -> [UInt8] = { Message(type: .bindingRequest, transactionID: (0..<12).map { _ in UInt8.random(in: 0...255) })
            .adding(.username, Array("\(serverUfrag):\(ufrag)".utf8)).adding(.iceControlling, [UInt8](repeating: 1, count: 8))
            .adding(.useCandidate, []).encode(integrityKey: Array(serverPassword.utf8), fingerprint: true) }
        send(check())
        flush()
        let consent = eventLoop.scheduleRepeatedTask(initialDelay: .seconds(5), delay: .seconds(5)) { _ in
            send(check())
            flush()
        }
        do {
            let dtls = try DTLSSession(certificate: certificate, role: .client, peerFingerprint: fingerprint)
            var outgoing = dtls.start().datagrams
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline {
                for d in outgoing { send(d) }
                flush()
                outgoing = []
                if case .connected(let keys) = dtls.state { return (keys, consent) }
                if case .failed(let why) = dtls.state { throw Failure(description: "DTLS failed: \(why)") }
                guard let reply = await next(.milliseconds(300)) else {
                    outgoing = dtls.handleTimeout().datagrams
                    continue
                }
                guard let first = reply.first, (20...63).contains(first) else { continue }  // STUN answers
                outgoing = dtls.receive(reply).datagrams
            }
            throw Failure(description: "DTLS did not finish in 10 s")
        } catch {
            consent.cancel()
            throw error
        }
    }
}
