import ArgumentParser
import DTLS
import Foundation
import NIOCore
import NIOPosix
import RTP
import SRTP
import STUN
import Locks

/// The SFU's forwarding cost and the memory of a viewer session, measured on a running server (LiveSwarm, or another
/// server's WHIP and WHEP given as paths): one WHIP publisher sends paced VP8 or H.264 RTP (SRTP, with the mid and
/// transport-cc header extensions a browser sends) and `viewers` WHEP sessions receive it. Every peer is a real
/// client of the server (ICE check, DTLS handshake, SRTP keys), built from our own modules, on its own UDP socket.
/// The viewers read with recvmmsg and count datagrams, and unprotect one in `sample-every` (so that the load
/// generator, on one core, is not what limits a thousand viewers): a sample that fails authentication is counted.
/// Viewers join one after another, or all at once (`--join crowd`: a flash crowd), and the joins are timed.
/// The delivered share counts, at every viewer, only the packets the publisher sent inside the measured window, each
/// told by its number: the publisher writes its packet count into the payload's last 4 bytes, a viewer reads it from
/// the first packet it unprotects, and from then on reads it off the sequence number (a server shifts sequence
/// numbers by a fixed offset per viewer). So packets still queued at either edge of the window are neither lost nor
/// counted twice: counting received packets between two instants was off by about 3 % either way at 1000 viewers.
/// Prints one Markdown row.
struct SFULoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sfu")

    @Option(help: "Server host.") var host = "127.0.0.1"
    @Option(help: "Server HTTP port (WHIP/WHEP).") var httpPort = 8080
    @Option(help: "Server media port (UDP).") var rtcPort = 8000
    @Option(help: "Server process id, for CPU and memory (from /proc).") var pid: Int32
    @Option(help: "WHEP viewers.") var viewers = 10
    @Option(help: "RTP packets per second from the publisher (see --bitrate).") var rate = 200
    @Option(help: "The publisher's bitrate in bits per second, instead of --rate (packets of --size).") var bitrate: Int?
    @Option(help: "RTP packet size in bytes (before SRTP).") var size = 1200
    @Option(help: "Seconds of measurement.") var seconds = 10
    @Option(help: "Stream name.") var stream = "sfubench"
    @Option(help: "WHIP path, {stream} for the stream name (SRS: /rtc/v1/whip/?app=live&stream={stream}).")
    var whipPath = "/whip/live/{stream}"
    @Option(help: "WHEP path, {stream} for the stream name (SRS: /rtc/v1/whep/?app=live&stream={stream}).")
    var whepPath = "/whep/live/{stream}"
    @Option(help: "vp8, or h264 (packetization-mode 1: each frame one FU-A of 10 packets, an IDR every 40 frames).")
    var codec = "vp8"
    @Option(help: "SRTP profiles the peers offer: any (AES-GCM first), aes-cm, or aes-gcm.") var srtp = "any"
    @Option(help: "sequential (one viewer after another), or crowd (all at once).") var join = "sequential"
    @Option(help: "Each viewer unprotects one received packet in this many.") var sampleEvery = 64
    @Option(help: "Seconds a viewer's DTLS handshake may take.") var handshakeSeconds = 10
    @Option(help: "How many of the viewers use ICE-TCP (RFC 6544) instead of UDP.") var tcpViewers = 0
    @Option(help: "Profile the server over the measured window into this perf.data file (perf record -e cpu-clock -g; scripts/perf-split.py reads it).")
    var perf: String?

    func validate() throws {
        guard ["vp8", "h264"].contains(codec) else { throw ValidationError("--codec is vp8 or h264") }
        guard ["any", "aes-cm", "aes-gcm"].contains(srtp) else { throw ValidationError("--srtp is any, aes-cm or aes-gcm") }
        guard ["sequential", "crowd"].contains(join) else { throw ValidationError("--join is sequential or crowd") }
        guard sampleEvery >= 1 else { throw ValidationError("--sample-every is at least 1") }
    }

    var profiles: [SRTPProfile] {
        switch srtp {
        case "aes-cm": [.aes128CmHmacSha1_80]
        case "aes-gcm": [.aeadAes128Gcm]
        default: SRTPProfile.allCases
        }
    }

    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try SocketAddress(ipAddress: host, port: rtcPort)
        let http = HTTPSession(group: group, host: host, port: httpPort)
        let window = DeliveryWindow()
        let options = BenchPeer.Options(h264: codec == "h264", profiles: profiles, sampleEvery: sampleEvery,
                                        handshakeTimeout: .seconds(handshakeSeconds), window: window)
        let path = { (template: String) in template.replacingOccurrences(of: "{stream}", with: stream) }
        let publisher = try await BenchPeer.connect(group: group, http: http, path: path(whipPath), sending: true, server: server,
                                                    options: options)
        let packetRate = bitrate.map { max(1, $0 / 8 / size) } ?? rate
        let sent = Atomic<Int>(0)
        let sender = Task { [size, codec] in
            try await Self.send(from: publisher, rate: packetRate, size: size, h264: codec == "h264", sent: sent)
        }
        try await Task.sleep(for: .seconds(1))
        let base = ProcStats.read(pid: pid)
        let joinStart = ContinuousClock.now
        var peers: [BenchPeer] = []
        var failures: [String] = []
        let whep = path(whepPath)
        // The first `tcpViewers` viewers on ICE-TCP: they share the send path, which must not regress for them.
        let tcpViewers = tcpViewers
        let viewerOptions = { @Sendable (i: Int) -> BenchPeer.Options in
            var o = options
            o.tcp = i < tcpViewers
            return o
        }
        if join == "crowd" {
            await withTaskGroup(of: Result<BenchPeer, any Error>.self) { tasks in
                for i in 0..<viewers {
                    tasks.addTask {
                        do {
                            return .success(try await BenchPeer.connect(group: group, http: http, path: whep, sending: false,
                                                                        server: server, options: viewerOptions(i)))
                        } catch {
                            return .failure(error)
                        }
                    }
                }
                for await result in tasks {
                    switch result {
                    case .success(let peer): peers.append(peer)
                    case .failure(let error): failures.append("\(error)")
                    }
                }
            }
        } else {
            for i in 0..<viewers {
                do {
                    peers.append(try await BenchPeer.connect(group: group, http: http, path: whep, sending: false,
                                                             server: server, options: viewerOptions(i)))
                } catch {
                    failures.append("\(error)")
                }
            }
        }
        // Every viewer's first packet (or 10 s), then its buffers filled by traffic.
        let firstDeadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < firstDeadline, peers.contains(where: { $0.firstPacket.withLock { $0 } == nil }) {
            try await Task.sleep(for: .milliseconds(20))
        }
        let lastConnected = peers.compactMap { $0.connectedAt }.max()
        let lastFirstPacket = peers.compactMap { $0.firstPacket.withLock { $0 } }.max()
        try await Task.sleep(for: .seconds(2))
        let loaded = ProcStats.read(pid: pid)
        let received0 = peers.reduce(0) { $0 + $1.received.load(ordering: .relaxed) }
        // Packets numbered from here on count as delivered (the sender adds 1 after it sends packet number n).
        let sent0 = sent.load(ordering: .relaxed)
        window.start.store(sent0, ordering: .relaxed)
        // perf samples the server (kernel included) over the window; it runs on the bench's core, and its sampling
        // adds a little to the server's CPU measured here.
        let recorder = try perf.map { try PerfRecorder(pid: pid, output: $0) }
        let before = ProcStats.read(pid: pid), benchBefore = ProcStats.read(pid: getpid())
        try await Task.sleep(for: .seconds(seconds))
        let after = ProcStats.read(pid: pid), benchAfter = ProcStats.read(pid: getpid())
        recorder?.stop()
        let received = peers.reduce(0) { $0 + $1.received.load(ordering: .relaxed) } - received0
        let sent1 = sent.load(ordering: .relaxed)
        window.end.store(sent1, ordering: .relaxed)
        let published = sent1 - sent0
        // The window's last packets reach every viewer (the server's CPU above was measured without this).
        try await Task.sleep(for: .seconds(1))
        let delivered = peers.reduce(0) { $0 + $1.inWindow.load(ordering: .relaxed) }
        let unnumbered = peers.filter { !$0.numbered.load(ordering: .relaxed) }.count
        let renumbered = peers.reduce(0) { $0 + $1.renumbered.load(ordering: .relaxed) }
        let sampled = peers.reduce(0) { $0 + $1.sampled.load(ordering: .relaxed) }
        let forged = peers.reduce(0) { $0 + $1.sampleFailures.load(ordering: .relaxed) }
        sender.cancel()
        _ = await sender.result
        for p in [publisher] + peers { await p.close(http: http) }
        try await group.shutdownGracefully()

        let wall = (after.at - before.at) / .seconds(1)
        let cpuSeconds = after.cpuSeconds - before.cpuSeconds
        let expected = published * peers.count
        let perViewerKiB = peers.isEmpty ? 0 : (loaded.rssMiB - base.rssMiB) * 1024 / Double(peers.count)
        let ms = { (t: ContinuousClock.Instant?) in t.map { fixed(($0 - joinStart) / .milliseconds(1), 0) } ?? "-" }
        let joinSeconds = lastConnected.map { ($0 - joinStart) / .seconds(1) } ?? 0
        // Interpolated, not String(format:): a CVarArg of the wrong kind there shifts every later column.
        let columns: [String] = [
            "\(viewers)", codec, join, fixed(Double(published) / wall, 0), fixed(Double(received) / wall, 0),
            fixed(expected > 0 ? Double(delivered) / Double(expected) * 100 : 0, 1), fixed(cpuSeconds / wall * 100, 0),
            fixed(received > 0 ? cpuSeconds / Double(received) * 1e6 : 0, 2), fixed(perViewerKiB, 0),
            publisher.profile.map { "\($0)" } ?? "-", fixed(benchAfter.cpuPercent(since: benchBefore), 0),
            "\(sampled - forged)/\(sampled)", joinSeconds > 0 ? fixed(Double(peers.count) / joinSeconds, 0) : "-",
            ms(lastConnected), ms(lastFirstPacket), "\(failures.count)",
        ]
        print("| " + columns.joined(separator: " | ") + " |")
        if let first = failures.first { FileHandle.standardError.write(Data("\(failures.count) joins failed; first: \(first)\n".utf8)) }
        if unnumbered > 0 || renumbered > 0 {
            // The delivered share is then short: a viewer that never unprotected a packet counts none, and a server
            // that does not shift sequence numbers by a fixed offset breaks the numbering.
            FileHandle.standardError.write(Data("""
                delivered share unreliable: \(unnumbered) viewers never read a packet number, \(renumbered) samples \
                disagreed with their viewer's numbering

                """.utf8))
        }
    }

    /// Paced packets in 10 ms bursts. VP8: every one a keyframe start, so a viewer decodes from its first packet.
    /// H.264: each frame (10 packets) one FU-A, an IDR every 40 frames, the marker on its last packet.
    static func send(from peer: BenchPeer, rate: Int, size: Int, h264: Bool, sent: borrowing Atomic<Int>) async throws {
        let start = ContinuousClock.now
        var seq: UInt16 = 0
        var twcc: UInt16 = 0
        var count = 0
        // The last 4 bytes carry the packet's number (viewers count the window's packets by it).
        var payload = [UInt8](repeating: 0x5A, count: max(4, size - 12 - 12 - 2))
        while !Task.isCancelled {
            let elapsed = (ContinuousClock.now - start) / .seconds(1)
            let due = Int(elapsed * Double(rate))
            while count < due {
                let frame = count / 10, inFrame = count % 10
                var h = RTPHeader(marker: inFrame == 9, payloadType: 96, sequenceNumber: seq, timestamp: UInt32(truncatingIfNeeded: frame * 3000),
                                  ssrc: BenchPeer.publisherSSRC)
                h.extensions = [.init(id: 4, value: Array("0".utf8)), .init(id: 3, value: [UInt8(twcc >> 8), UInt8(twcc & 0xFF)])]
                let descriptor: [UInt8]
                if h264 {
                    let type: UInt8 = frame % 40 == 0 ? 5 : 1
                    descriptor = [0x7C, (inFrame == 0 ? 0x80 : 0) | (inFrame == 9 ? 0x40 : 0) | type]
                } else {
                    descriptor = [0x10, 0x00]
                }
                withUnsafeBytes(of: UInt32(truncatingIfNeeded: count).bigEndian) { payload.replaceSubrange(payload.count - 4..<payload.count, with: $0) }
                var packet = RTPPacket(header: h, payload: ArraySlice(descriptor + payload)).write()
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

/// WHIP and WHEP requests, each on a connection of its own: SRS closes the connection after every one, and a flash
/// crowd's requests run at once.
struct HTTPSession: Sendable {
    let group: any EventLoopGroup
    let host: String
    let port: Int

    func request(_ method: String, _ path: String, contentType: String? = nil, body: String? = nil) async throws -> HTTPConnection.Response {
        let connection = try await HTTPConnection.open(group: group, host: host, port: port)
        defer { connection.close() }
        return try await connection.request(method, path, contentType: contentType, body: body)
    }
}

/// One WebRTC peer of the server on its own UDP socket: WHIP or WHEP offer, ICE check with USE-CANDIDATE, DTLS
/// client handshake, then SRTP. A viewer reads with recvmmsg, counts the RTP packets it receives, and unprotects one
/// in `sampleEvery` (the client's CPU is for receiving). A check every 5 s keeps ICE consent (RFC 7675) alive.
final class BenchPeer: ChannelInboundHandler, DatagramPeer, @unchecked Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    static let publisherSSRC: UInt32 = 0x5EED_0001
    struct Failure: Error, CustomStringConvertible { var description: String }

    struct Options: Sendable {
        var h264 = false
        var profiles = SRTPProfile.allCases
        var sampleEvery = 1
        var handshakeTimeout = Duration.seconds(10)
        /// ICE-TCP (RFC 6544, RFC 4571 framing) to the answer's TCP candidate instead of UDP.
        var tcp = false
        /// The publisher's packet numbers a viewer counts as delivered.
        var window = DeliveryWindow()
    }

    let server: SocketAddress
    let options: Options
    let received = Atomic<Int>(0)
    let sampled = Atomic<Int>(0)
    let sampleFailures = Atomic<Int>(0)
    /// Packets received whose publisher number is inside the window; whether this viewer knows the numbering, and
    /// how many unprotected samples disagreed with it.
    let inWindow = Atomic<Int>(0)
    let numbered = Atomic<Bool>(false)
    let renumbered = Atomic<Int>(0)
    let counting = Atomic<Bool>(false)
    let firstPacket = Mutex<ContinuousClock.Instant?>(nil)
    let inbox = DatagramInbox()
    private(set) var channel: (any Channel)!
    private(set) var protect: SRTPContext?
    /// Touched only on the channel's event loop (set before counting starts).
    private var unprotect: SRTPContext?
    /// The last sequence number, extended past wraps, and the publisher's number minus it (channel's loop only).
    private var extendedSequence: Int?
    private var numberOffset: Int?
    private(set) var profile: SRTPProfile?
    private(set) var connectedAt: ContinuousClock.Instant?
    private(set) var location: String?
    private var consent: RepeatedTask?

    init(server: SocketAddress, options: Options) {
        self.server = server
        self.options = options
    }

    static func connect(group: any EventLoopGroup, http: HTTPSession, path: String, sending: Bool,
                        server: SocketAddress, options: Options = Options()) async throws -> BenchPeer {
        let peer = BenchPeer(server: server, options: options)
        if !options.tcp {
            peer.channel = try await DatagramBootstrap(group: group)
                .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
                // recvmmsg: up to 32 datagrams a call, 2 KiB each.
                .channelOption(.datagramVectorReadMessageCount, value: 32)
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 32 * 2048))
                .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(peer) } }
                .bind(host: "127.0.0.1", port: 0).get()
        }
        do {
            let certificate = try Certificate()
            let ufrag = Self.token(8), password = Self.token(24)
            let offer = Self.offer(sending: sending, ufrag: ufrag, password: password, fingerprint: certificate.fingerprint.sdpValue,
                                   h264: options.h264)
            let answer = try await http.request("POST", path, contentType: "application/sdp", body: offer)
            let text = String(buffer: answer.body)
            guard answer.status == 201 else { throw Failure(description: "\(path): \(answer.status) \(text)") }
            peer.location = answer.headers["location"]
            if options.tcp {
                // The answer's TCP candidate: "a=candidate:F 1 tcp PRIORITY HOST PORT typ host tcptype passive".
                guard let line = text.split(separator: "\r\n").first(where: { $0.hasPrefix("a=candidate:") && $0.contains(" tcp ") }),
                      case let parts = line.split(separator: " "), parts.count > 5, let port = Int(parts[5]) else {
                    throw Failure(description: "\(path): no TCP candidate in the answer")
                }
                peer.channel = try await ClientBootstrap(group: group)
                    .channelInitializer { ch in
                        ch.eventLoop.makeCompletedFuture {
                            try ch.pipeline.syncOperations.addHandler(ByteToMessageHandler(RFC4571Frames()))
                            try ch.pipeline.syncOperations.addHandler(TCPFrames(peer: peer))
                        }
                    }
                    .connect(host: String(parts[4]), port: port).get()
            }
            let (keys, consent) = try await ClientHandshake.run(answer: text, ufrag: ufrag, certificate: certificate,
                                                                 eventLoop: peer.channel.eventLoop, send: peer.send, flush: peer.flush,
                                                                 next: peer.next, profiles: options.profiles,
                                                                 timeout: options.handshakeTimeout)
            peer.consent = consent
            peer.profile = keys.profile
            peer.connectedAt = .now
            peer.protect = try SRTPContext(profile: keys.profile, masterKey: keys.local, direction: .outbound)
            let unprotect = try SRTPContext(profile: keys.profile, masterKey: keys.remote, direction: .inbound,
                                            replayWindow: 32768)
            try await peer.channel.eventLoop.submit {
                peer.unprotect = unprotect
                peer.counting.store(true, ordering: .relaxed)
            }.get()
            return peer
        } catch let e as ClientHandshake.Failure {
            try? await peer.channel.close()
            throw Failure(description: "\(path): \(e)")
        } catch {
            try? await peer.channel.close()
            throw error
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
        received(unwrapInboundIn(data).data)
    }

    /// A datagram (or an ICE-TCP frame) from the server.
    func received(_ bytes: ByteBuffer) {
        guard counting.load(ordering: .relaxed) else {
            inbox.push(Array(bytes.readableBytesView))
            return
        }
        // RTP (RFC 7983: first byte 128-191), not RTCP.
        guard let b0 = bytes.getInteger(at: bytes.readerIndex, as: UInt8.self), (128...191).contains(b0),
              !RTPPacket.isRTCP(bytes.readableBytesView) else { return }
        let n = received.wrappingAdd(1, ordering: .relaxed).newValue
        if n == 1 { firstPacket.withLock { $0 = .now } }
        let sequence = extend(Int(bytes.getInteger(at: bytes.readerIndex + 2, as: UInt16.self) ?? 0))
        if let numberOffset {
            let number = sequence + numberOffset
            if number >= options.window.start.load(ordering: .relaxed) && number < options.window.end.load(ordering: .relaxed) {
                inWindow.add(1, ordering: .relaxed)
            }
        }
        guard n % options.sampleEvery == 0 || numberOffset == nil, let unprotect else { return }
        var packet = Array(bytes.readableBytesView)
        // Only a forgery counts against the server: a sample may also be a replay (a duplicate the server forwarded).
        do throws(SRTPError) {
            _ = try unprotect.unprotectRTP(&packet)
            sampled.add(1, ordering: .relaxed)
            guard packet.count >= 16 else { return }
            let number = packet[(packet.count - 4)...].reduce(0) { $0 << 8 | Int($1) }
            if let numberOffset {
                if (sequence + numberOffset) & 0xFFFF_FFFF != number { renumbered.add(1, ordering: .relaxed) }
            } else {
                numberOffset = number - sequence
                numbered.store(true, ordering: .relaxed)
                if number >= options.window.start.load(ordering: .relaxed) && number < options.window.end.load(ordering: .relaxed) {
                    inWindow.add(1, ordering: .relaxed)
                }
            }
        } catch .authenticationFailed {
            sampled.add(1, ordering: .relaxed)
            sampleFailures.add(1, ordering: .relaxed)
        } catch {}
    }

    /// A 16-bit sequence number extended past its wraps (RFC 3550 A.1), from the last one seen.
    private func extend(_ sequence: Int) -> Int {
        guard let last = extendedSequence else {
            extendedSequence = sequence
            return sequence
        }
        var delta = (sequence - last) & 0xFFFF
        if delta >= 0x8000 { delta -= 0x10000 }
        let extended = last + delta
        if delta > 0 { extendedSequence = extended }
        return extended
    }

    /// To the server: a datagram, or over ICE-TCP a frame with its 2-byte length (RFC 4571).
    func send(_ bytes: [UInt8]) {
        if options.tcp {
            var framed = ByteBuffer()
            framed.writeInteger(UInt16(truncatingIfNeeded: bytes.count))
            framed.writeBytes(bytes)
            channel.write(framed, promise: nil)
        } else {
            channel.write(AddressedEnvelope(remoteAddress: server, data: ByteBuffer(bytes: bytes)), promise: nil)
        }
    }

    /// Ends the session (DELETE on its Location, a path or a URL) and closes the socket.
    func close(http: HTTPSession) async {
        consent?.cancel()
        if var location {
            if let url = URL(string: location), url.host != nil {
                location = url.path + (url.query.map { "?\($0)" } ?? "")
            }
            _ = try? await http.request("DELETE", location)
        }
        try? await channel.close()
    }
}

/// The publisher's packet numbers `start..<end` are the measured window (`end` is unbounded until the window ends).
final class DeliveryWindow: Sendable {
    let start = Atomic<Int>(.max)
    let end = Atomic<Int>(.max)
}

/// RFC 4571: each packet on an ICE-TCP connection is preceded by its length, 16 bits big-endian.
struct RFC4571Frames: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
              let frame = buffer.getSlice(at: buffer.readerIndex + 2, length: Int(length)) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 2 + Int(length))
        context.fireChannelRead(wrapInboundOut(frame))
        return .continue
    }
}

/// An ICE-TCP bench peer's frames, handed to it as its datagrams would be.
final class TCPFrames: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let peer: BenchPeer
    init(peer: BenchPeer) { self.peer = peer }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { peer.received(unwrapInboundIn(data)) }
}

/// Datagrams that arrive before a peer counts media (the handshake's), and a reader waiting for the next one: a
/// flash crowd's thousand handshakes wait on promises woken by their datagrams, not on timers polling.
final class DatagramInbox: @unchecked Sendable {
    private let state = Mutex<(queue: [[UInt8]], waiter: EventLoopPromise<[UInt8]?>?)>(([], nil))

    func push(_ datagram: [UInt8]) {
        let waiter = state.withLock { s -> EventLoopPromise<[UInt8]?>? in
            if let w = s.waiter {
                s.waiter = nil
                return w
            }
            s.queue.append(datagram)
            return nil
        }
        waiter?.succeed(datagram)
    }

    /// The next datagram, or nil after `timeout`.
    func next(timeout: Duration, on loop: any EventLoop) async -> [UInt8]? {
        let promise = loop.makePromise(of: [UInt8]?.self)
        let ready = state.withLock { s -> [UInt8]? in
            if !s.queue.isEmpty { return s.queue.removeFirst() }
            s.waiter = promise
            return nil
        }
        if let ready {
            promise.succeed(nil)
            return ready
        }
        let (seconds, attoseconds) = timeout.components
        let timer = loop.scheduleTask(in: .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)) {
            let mine = self.state.withLock { s -> Bool in
                guard let w = s.waiter, w.futureResult === promise.futureResult else { return false }
                s.waiter = nil
                return true
            }
            if mine { promise.succeed(nil) }
        }
        let datagram = try? await promise.futureResult.get()
        timer.cancel()
        return datagram ?? nil
    }
}

/// A bench client on its own UDP socket, talking to one server address; what arrives before it counts media waits in
/// `inbox` for the handshake.
protocol DatagramPeer: AnyObject {
    var channel: (any Channel)! { get }
    var server: SocketAddress { get }
    var inbox: DatagramInbox { get }
}

extension DatagramPeer {
    func send(_ bytes: [UInt8]) {
        channel.write(AddressedEnvelope(remoteAddress: server, data: ByteBuffer(bytes: bytes)), promise: nil)
    }

    func flush() { channel.flush() }

    func next(timeout: Duration) async -> [UInt8]? { await inbox.next(timeout: timeout, on: channel.eventLoop) }
}

/// The client side of a WebRTC transport's setup against the server (ICE-lite): a Binding check with USE-CANDIDATE
/// to the address the datagrams go to (again every 5 s, for consent, RFC 7675), then the DTLS client handshake over
/// the same socket. Returns the SRTP keys and the consent task.
enum ClientHandshake {
    struct Failure: Error, CustomStringConvertible { var description: String }

    static func run(answer: String, ufrag: String, certificate: Certificate, eventLoop: any EventLoop,
                    send: @escaping @Sendable ([UInt8]) -> Void, flush: @escaping @Sendable () -> Void,
                    next: (Duration) async -> [UInt8]?, profiles: [SRTPProfile] = SRTPProfile.allCases,
                    timeout: Duration = .seconds(10)) async throws -> (keys: SRTPKeys, consent: RepeatedTask) {
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
            let dtls = try DTLSSession(certificate: certificate, role: .client, peerFingerprint: fingerprint, srtpProfiles: profiles)
            var outgoing = dtls.start().datagrams
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                for d in outgoing { send(d) }
                flush()
                outgoing = []
                if case .connected(let keys) = dtls.state { return (keys, consent) }
                if case .failed(let why) = dtls.state { throw Failure(description: "DTLS failed: \(why)") }
                guard let reply = await next(.milliseconds(300)) else {
                    // The check again too: an ICE-lite server ignores DTLS until a check has come through.
                    send(check())
                    outgoing = dtls.handleTimeout().datagrams
                    continue
                }
                guard let first = reply.first, (20...63).contains(first) else { continue }  // STUN answers
                outgoing = dtls.receive(reply).datagrams
            }
            throw Failure(description: "DTLS did not finish in \(timeout)")
        } catch {
            consent.cancel()
            throw error
        }
    }
}
