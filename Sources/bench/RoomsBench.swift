import ArgumentParser
import DTLS
import Foundation
import LoopbackWebSocket
import NIOCore
import NIOPosix
import RTP
import SRTP
import STUN
import Locks

/// A meeting room of bots on a running server: each joins over `/ws` (docs/ROOMS.md), publishes audio and video on
/// one PeerConnection and receives everyone else's on another, every transport a real WebRTC peer built from our
/// modules (ICE check, DTLS handshake, SRTP). A bot answers a PLI with a keyframe-marked packet, so a join time
/// measures the server rather than a keyframe interval. Prints one Markdown row: forwarded packets per second, the
/// share delivered, the server's CPU per forwarded packet, its memory per participant, and join times (from `join`
/// sent to a keyframe received from every other participant) of `--late-joins` participants joining the room in turn.
struct RoomsLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rooms")

    @Option(help: "Server host.") var host = "127.0.0.1"
    @Option(help: "Server HTTP port (/ws).") var httpPort = 8080
    @Option(help: "Server process id, for CPU and memory (from /proc).") var pid: Int32
    @Option(help: "Participants in the room.") var participants = 4
    @Option(help: "Video frames per second per participant (two 1000-byte packets each).") var fps = 30
    @Option(help: "Seconds of measurement.") var seconds = 10
    @Option(help: "Joins (and leaves), a second apart, of a participant into the room after the measurement, for join times.") var lateJoins = 8
    @Option(help: "Room name.") var room = "roombench"

    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let base = ProcStats.read(pid: pid)
        var bots: [RoomBot] = []
        var joins: [Double] = []
        for i in 0..<participants {
            let bot = try await RoomBot.join(group: group, host: host, port: httpPort, room: room, name: "bot\(i)", fps: fps, loud: i == 0)
            bots.append(bot)
        }
        // Everyone receives everyone: N-1 videos per bot.
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline, !bots.allSatisfy({ $0.keyframesSeen >= participants - 1 }) {
            try await Task.sleep(for: .milliseconds(100))
        }
        try await Task.sleep(for: .seconds(2))
        let loaded = ProcStats.read(pid: pid)
        let received0 = bots.reduce(0) { $0 + $1.received }
        let sent0 = bots.reduce(0) { $0 + $1.sent }
        let before = ProcStats.read(pid: pid)
        try await Task.sleep(for: .seconds(seconds))
        let after = ProcStats.read(pid: pid)
        let received = bots.reduce(0) { $0 + $1.received } - received0
        let sent = bots.reduce(0) { $0 + $1.sent } - sent0
        // Join times: one participant leaves, and one more joins the room of N-1 and leaves again, a second apart (the
        // server passes on at most one keyframe request per publisher every 500 ms: joins closer together than that
        // wait for one another's keyframe).
        await bots.removeLast().leave()
        for _ in 0..<lateJoins {
            try await Task.sleep(for: .seconds(1))
            let late = try await RoomBot.join(group: group, host: host, port: httpPort, room: room, name: "late", fps: fps, loud: false)
            joins.append(try await late.joinTime(expecting: participants - 1))
            await late.leave()
        }
        for b in bots { await b.leave() }
        try await group.shutdownGracefully()

        let wall = (after.at - before.at) / .seconds(1)
        let cpuSeconds = after.cpuSeconds - before.cpuSeconds
        // Each packet a bot sends goes to the N-1 others.
        let expected = sent * (participants - 1)
        let perParticipant = (loaded.rssMiB - base.rssMiB) * 1024 / Double(participants)
        let sorted = joins.sorted()
        func pct(_ p: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))] }
        print(String(format: "| %d | %d | %.0f | %.1f | %.0f | %.1f | %.0f | %.0f | %.0f | %d |", participants, participants * (participants - 1) * 2,
                     Double(received) / wall, expected > 0 ? Double(received) / Double(expected) * 100 : 0, cpuSeconds / wall * 100,
                     received > 0 ? cpuSeconds / Double(received) * 1e6 : 0, perParticipant, pct(0.5), pct(0.99), joins.count))
    }
}

/// One participant: a WebSocket for the room protocol, a publish transport sending paced Opus-sized and VP8 packets,
/// a subscribe transport receiving the others (re-offered as their tracks arrive).
final class RoomBot: @unchecked Sendable {
    struct Failure: Error, CustomStringConvertible { var description: String }

    let group: any EventLoopGroup
    let name: String
    let fps: Int
    let loud: Bool
    let lock = NSLock()
    var outbound: LoopbackWebSocket.Outbound?
    var socketTask: Task<Void, any Error>?
    var messages: [[String: Any]] = []
    var tracks: [String] = []  // track ids of the others, in the order their mids were made
    var publishTransport: BotTransport?
    var subscribeTransport: BotTransport?
    var subscribeCredentials: (ufrag: String, password: String, certificate: Certificate)?
    var offering = false
    var wantedAgain = false
    var events: Task<Void, any Error>?
    var media: Task<Void, any Error>?
    var joinSent: ContinuousClock.Instant = .now

    var received: Int { subscribeTransport?.received.load(ordering: .relaxed) ?? 0 }
    var sent: Int { publishTransport?.sent.load(ordering: .relaxed) ?? 0 }
    var keyframesSeen: Int { subscribeTransport?.keyframes.withLock { $0.count } ?? 0 }

    init(group: any EventLoopGroup, name: String, fps: Int, loud: Bool) {
        (self.group, self.name, self.fps, self.loud) = (group, name, fps, loud)
    }

    static func join(group: any EventLoopGroup, host: String, port: Int, room: String, name: String, fps: Int, loud: Bool) async throws -> RoomBot {
        let bot = RoomBot(group: group, name: name, fps: fps, loud: loud)
        let ready = Mutex<Bool?>(nil)
        bot.socketTask = Task {
            try await LoopbackWebSocket.connect(host: host, port: port, path: "/ws") { inbound, outbound in
                bot.lock.withLock { bot.outbound = outbound }
                ready.withLock { $0 = true }
                for try await message in inbound {
                    guard case .text(let text) = message,
                          let o = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { continue }
                    bot.lock.withLock { bot.messages.append(o) }
                }
            }
        }
        while ready.withLock({ $0 }) == nil { try await Task.sleep(for: .milliseconds(5)) }
        bot.joinSent = .now
        try await bot.send(["type": "join", "version": 1, "room": room, "name": name])
        let joined = try await bot.next("joined")
        try await bot.publish()
        for p in joined["participants"] as? [[String: Any]] ?? [] {
            for t in p["tracks"] as? [[String: Any]] ?? [] { if let id = t["id"] as? String { bot.tracks.append(id) } }
        }
        bot.events = Task { try await bot.runEvents() }
        return bot
    }

    func send(_ message: [String: Any]) async throws {
        let text = String(decoding: try JSONSerialization.data(withJSONObject: message), as: UTF8.self)
        guard let outbound = lock.withLock({ outbound }) else { throw Failure(description: "not connected") }
        try await outbound.send(text)
    }

    /// The next message of `type`, others kept for the event loop.
    func next(_ type: String, timeout: Duration = .seconds(10)) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let m = lock.withLock({ () -> [String: Any]? in
                guard let i = messages.firstIndex(where: { $0["type"] as? String == type }) else { return nil }
                return messages.remove(at: i)
            }) { return m }
            if let e = lock.withLock({ messages.first { $0["type"] as? String == "error" } }) { throw Failure(description: "\(name): \(e)") }
            try await Task.sleep(for: .milliseconds(2))
        }
        throw Failure(description: "\(name): no \(type) within \(timeout)")
    }

    /// Audio (mid 0, Opus) and video (mid 1, VP8) on one transport; media starts once DTLS is up.
    func publish() async throws {
        let certificate = try Certificate()
        let ufrag = BenchPeer.token(8), password = BenchPeer.token(24)
        let audioSSRC = UInt32.random(in: 1...UInt32.max), videoSSRC = UInt32.random(in: 1...UInt32.max)
        let sdp = Self.offer(sections: [(mid: "0", kind: "audio", sending: true, ssrc: audioSSRC), (mid: "1", kind: "video", sending: true, ssrc: videoSSRC)],
                             ufrag: ufrag, password: password, fingerprint: certificate.fingerprint.sdpValue)
        try await send(["type": "publish", "sdp": sdp])
        let answer = try await next("publishAnswer")
        let transport = try await BotTransport.connect(group: group, answer: answer["sdp"] as? String ?? "", ufrag: ufrag, certificate: certificate)
        publishTransport = transport
        let fps = self.fps, loud = self.loud
        media = Task { try await transport.sendMedia(audioSSRC: audioSSRC, videoSSRC: videoSSRC, fps: fps, loud: loud) }
    }

    /// Handles room events: new tracks are subscribed to (one offer in flight at a time).
    func runEvents() async throws {
        try await resubscribe()
        while !Task.isCancelled {
            // Everything but the answers is an event: taken here, the new tracks acted on.
            let events = lock.withLock { () -> [[String: Any]] in
                let isEvent: ([String: Any]) -> Bool = { !["subscribeAnswer", "publishAnswer", "error"].contains($0["type"] as? String ?? "") }
                let e = messages.filter(isEvent)
                messages.removeAll(where: isEvent)
                return e
            }
            var changed = false
            for e in events where e["type"] as? String == "trackPublished" {
                if let t = e["track"] as? [String: Any], let id = t["id"] as? String { lock.withLock { tracks.append(id) }; changed = true }
            }
            if changed { try await resubscribe() }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func resubscribe() async throws {
        let list = lock.withLock { tracks }
        guard !list.isEmpty else { return }
        let creds = try subscribeCredentials ?? (BenchPeer.token(8), BenchPeer.token(24), Certificate())
        subscribeCredentials = creds
        let sections = list.enumerated().map { (mid: String($0.offset), kind: $0.element.hasSuffix("-0") ? "audio" : "video", sending: false, ssrc: UInt32(0)) }
        let sdp = Self.offer(sections: sections, ufrag: creds.ufrag, password: creds.password, fingerprint: creds.certificate.fingerprint.sdpValue)
        var map: [String: String] = [:]
        for (i, t) in list.enumerated() { map[String(i)] = t }
        try await send(["type": "subscribe", "sdp": sdp, "tracks": map])
        let answer = try await next("subscribeAnswer")
        let text = answer["sdp"] as? String ?? ""
        if subscribeTransport == nil {
            subscribeTransport = try await BotTransport.connect(group: group, answer: text, ufrag: creds.ufrag, certificate: creds.certificate)
        }
        subscribeTransport?.learnVideoSSRCs(fromAnswer: text)
    }

    /// From `join` sent to a keyframe received from `expecting` other participants.
    func joinTime(expecting: Int) async throws -> Double {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let t = subscribeTransport, let at = t.keyframes.withLock({ $0.count >= expecting ? $0.values.max() : nil }) {
                return (at - joinSent) / .milliseconds(1)
            }
            try await Task.sleep(for: .milliseconds(2))
        }
        throw Failure(description: "\(name): keyframes from \(keyframesSeen) of \(expecting) participants within 30 s")
    }

    func leave() async {
        try? await send(["type": "leave"])
        events?.cancel()
        media?.cancel()
        publishTransport?.close()
        subscribeTransport?.close()
        socketTask?.cancel()
    }

    /// A browser-like offer: BUNDLE, rtcp-mux, mid, transport-cc and (audio) audio level extensions, Opus and VP8
    /// with NACK/PLI.
    static func offer(sections: [(mid: String, kind: String, sending: Bool, ssrc: UInt32)], ufrag: String, password: String,
                      fingerprint: String) -> String {
        var lines = ["v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE " + sections.map(\.mid).joined(separator: " "),
                     "a=msid-semantic: WMS bench"]
        for s in sections {
            let audio = s.kind == "audio"
            lines += ["m=\(s.kind) 9 UDP/TLS/RTP/SAVPF \(audio ? 111 : 96)", "c=IN IP4 0.0.0.0", "a=rtcp:9 IN IP4 0.0.0.0",
                      "a=ice-ufrag:\(ufrag)", "a=ice-pwd:\(password)", "a=ice-options:trickle", "a=fingerprint:\(fingerprint)",
                      "a=setup:actpass", "a=mid:\(s.mid)",
                      "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
                      "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid"]
            if audio { lines.append("a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level") }
            lines.append(s.sending ? "a=sendonly" : "a=recvonly")
            if s.sending { lines.append("a=msid:bench \(s.kind)") }
            lines += ["a=rtcp-mux", "a=rtcp-rsize"]
            if audio {
                lines += ["a=rtpmap:111 opus/48000/2", "a=rtcp-fb:111 transport-cc", "a=fmtp:111 minptime=10;useinbandfec=1"]
            } else {
                lines += ["a=rtpmap:96 VP8/90000", "a=rtcp-fb:96 transport-cc", "a=rtcp-fb:96 nack", "a=rtcp-fb:96 nack pli"]
            }
            if s.sending { lines += ["a=ssrc:\(s.ssrc) cname:bench", "a=ssrc:\(s.ssrc) msid:bench \(s.kind)"] }
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }
}

/// One transport of a bot on its own UDP socket: ICE check with USE-CANDIDATE (and consent every 5 s), DTLS client
/// handshake, SRTP both ways. A publish transport answers PLI with a keyframe; a subscribe transport counts RTP and
/// notes when the first keyframe of each video SSRC arrived.
final class BotTransport: ChannelInboundHandler, DatagramPeer, @unchecked Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    let server: SocketAddress
    let received = Atomic<Int>(0)
    let sent = Atomic<Int>(0)
    let connected = Atomic<Bool>(false)
    let keyframeWanted = Atomic<Bool>(true)
    /// Video SSRC (of a subscription) to when its first keyframe arrived.
    let keyframes = Mutex<[UInt32: ContinuousClock.Instant]>([:])
    let videoSSRCs = Mutex<Set<UInt32>>([])
    let inbox = DatagramInbox()
    var channel: (any Channel)!
    var protect: SRTPContext?
    var unprotect: SRTPContext?
    var consent: RepeatedTask?
    var asking: RepeatedTask?

    init(server: SocketAddress) { self.server = server }

    static func connect(group: any EventLoopGroup, answer: String, ufrag: String, certificate: Certificate) async throws -> BotTransport {
        // The server's UDP candidate.
        guard let candidate = answer.split(separator: "\r\n").first(where: { $0.hasPrefix("a=candidate:") && $0.contains(" udp ") }) else {
            throw RoomBot.Failure(description: "no UDP candidate in the answer")
        }
        let parts = candidate.split(separator: " ")
        let transport = BotTransport(server: try SocketAddress(ipAddress: String(parts[4]), port: Int(parts[5]) ?? 0))
        transport.channel = try await DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
            .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(transport) } }
            .bind(host: "127.0.0.1", port: 0).get()
        let (keys, consent) = try await ClientHandshake.run(answer: answer, ufrag: ufrag, certificate: certificate,
                                                             eventLoop: transport.channel.eventLoop, send: transport.send,
                                                             flush: transport.flush, next: transport.next)
        transport.consent = consent
        transport.protect = try SRTPContext(profile: keys.profile, masterKey: keys.local, direction: .outbound)
        transport.unprotect = try SRTPContext(profile: keys.profile, masterKey: keys.remote, direction: .inbound)
        transport.connected.store(true, ordering: .releasing)
        // As a browser does: a PLI every 300 ms for each video that has not shown a keyframe yet (the server
        // limits the requests it passes on to one per 500 ms per publisher).
        transport.asking = transport.channel.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(300), delay: .milliseconds(300)) { _ in
            transport.askForKeyframes()
        }
        return transport
    }

    /// The SSRCs the server sends video with (`a=ssrc` in the answer's video sections).
    func learnVideoSSRCs(fromAnswer sdp: String) {
        var video = false
        var found: Set<UInt32> = []
        for line in sdp.split(separator: "\r\n") {
            if line.hasPrefix("m=") { video = line.hasPrefix("m=video") }
            if video, line.hasPrefix("a=ssrc:"), let ssrc = UInt32(line.dropFirst(7).prefix { $0.isNumber }) { found.insert(ssrc) }
        }
        videoSSRCs.withLock { $0.formUnion(found) }
    }

    func askForKeyframes() {
        let missing = videoSSRCs.withLock { ssrcs in keyframes.withLock { k in ssrcs.filter { k[$0] == nil } } }
        guard !missing.isEmpty else { return }
        var packet = RTCPPacket.writeCompound(missing.map { .pictureLoss(PictureLossIndication(senderSSRC: 0x5EED_0002, mediaSSRC: $0)) })
        guard (try? protect?.protectRTCP(&packet)) != nil else { return }
        send(packet)
        flush()
    }


    /// 50 audio packets a second (120 bytes, with an audio level: loud or silent) and `fps` video frames of two
    /// 1000-byte VP8 packets, a keyframe when the server asked for one (PLI).
    func sendMedia(audioSSRC: UInt32, videoSSRC: UInt32, fps: Int, loud: Bool) async throws {
        let start = ContinuousClock.now
        var audioSeq: UInt16 = 0, videoSeq: UInt16 = 0, twcc: UInt16 = 0
        var audioCount = 0, frames = 0
        let audioPayload = [UInt8](repeating: 0x33, count: 120)
        let videoPayload = [UInt8](repeating: 0x5A, count: 1000)
        while !Task.isCancelled {
            let elapsed = (ContinuousClock.now - start) / .seconds(1)
            while audioCount < Int(elapsed * 50) {
                var h = RTPHeader(marker: false, payloadType: 111, sequenceNumber: audioSeq, timestamp: UInt32(truncatingIfNeeded: audioCount * 960), ssrc: audioSSRC)
                h.extensions = [.init(id: 1, value: [loud ? 0x80 | 20 : 127]), .init(id: 3, value: [UInt8(twcc >> 8), UInt8(twcc & 0xFF)])]
                var p = RTPPacket(header: h, payload: ArraySlice(audioPayload)).write()
                try protect?.protectRTP(&p)
                send(p)
                audioSeq &+= 1; twcc &+= 1; audioCount += 1
                sent.add(1, ordering: .relaxed)
            }
            while frames < Int(elapsed * Double(fps)) {
                let key = keyframeWanted.exchange(false, ordering: .relaxed)
                for part in 0..<2 {
                    var h = RTPHeader(marker: part == 1, payloadType: 96, sequenceNumber: videoSeq,
                                      timestamp: UInt32(truncatingIfNeeded: frames * 90000 / max(1, fps)), ssrc: videoSSRC)
                    h.extensions = [.init(id: 3, value: [UInt8(twcc >> 8), UInt8(twcc & 0xFF)])]
                    // VP8 payload descriptor (S bit on the first packet), then the payload header's P bit: 0 is a keyframe.
                    let head: [UInt8] = part == 0 ? [0x10, key ? 0x00 : 0x01] : [0x00, 0x00]
                    var p = RTPPacket(header: h, payload: ArraySlice(head + videoPayload)).write()
                    try protect?.protectRTP(&p)
                    send(p)
                    videoSeq &+= 1; twcc &+= 1
                    sent.add(1, ordering: .relaxed)
                }
                frames += 1
            }
            flush()
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data).data
        guard connected.load(ordering: .acquiring) else {
            inbox.push(Array(buffer.readableBytesView))
            return
        }
        guard let b0 = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self), (128...191).contains(b0) else { return }
        var bytes = Array(buffer.readableBytesView)
        if RTPPacket.isRTCP(bytes) {
            // The server's feedback: a PLI asks for a keyframe.
            guard (try? unprotect?.unprotectRTCP(&bytes)) != nil, let packets = try? RTCPPacket.parseCompound(bytes) else { return }
            if packets.contains(where: { if case .pictureLoss = $0 { true } else { false } }) { keyframeWanted.store(true, ordering: .relaxed) }
            return
        }
        received.add(1, ordering: .relaxed)
        let ssrc = RTPPacket.fixedFields(bytes).ssrc
        guard videoSSRCs.withLock({ $0.contains(ssrc) }), keyframes.withLock({ $0[ssrc] == nil }) else { return }
        guard (try? unprotect?.unprotectRTP(&bytes)) != nil, let start = RTPPacket.headerLength(bytes), bytes.count > start + 1 else { return }
        if bytes[start] & 0x10 != 0, bytes[start] & 0x80 == 0, bytes[start + 1] & 0x01 == 0 {
            let now = ContinuousClock.now
            keyframes.withLock { if $0[ssrc] == nil { $0[ssrc] = now } }
        }
    }

    func close() {
        consent?.cancel()
        asking?.cancel()
        channel.close(promise: nil)
    }
}
