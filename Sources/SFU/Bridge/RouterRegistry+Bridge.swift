import SDP
import StreamHub

extension CodecPolicy {
    /// RTMP streams to WebRTC: the H.264 payload format (packetization-mode=1) the answer names. Encoders send
    /// High profile, which Chromium does not offer to receive; its decoder decodes High under any H.264 payload type
    /// it offered (docs/WEBRTC.md, "RTMP streams over WebRTC"), so the answer names the offered profile closest to
    /// the stream's: the same profile_idc when offered, else Constrained Baseline, else the first.
    public static func bridgeVideoCodec(in section: RemoteOffer.Section, streamProfile: UInt8?) -> RTPCodec? {
        let h264 = section.codecs.filter(\.isH264PacketizationMode1)
        return h264.first { streamProfile != nil && $0.h264Profile?.idc == streamProfile }
            ?? h264.first { $0.h264Profile?.idc == 0x42 && $0.h264Profile?.iop == 0xE0 }
            ?? h264.first
    }
}

extension RouterRegistry {
    public struct BridgeSnapshot: Sendable, Codable {
        public var stream: String
        public var viewers: Int
        public var framesSent: Int
        public var packetsSent: Int
        public var keyframesSent: Int
        public var framesDropped: Int
        /// Non-reference B-frames left out, and pictures left out because reference B-frames left keyframes only.
        public var nonReferenceDropped: Int
        public var reorderDropped: Int
        public var retransmitted: Int
        public var pictureLossRequests: Int
        /// Per viewer: milliseconds from its hub subscription (DTLS up) to its first picture sent, and to the live edge.
        public var firstFrameAfterMs: [Double]
        public var caughtUpAfterMs: [Double]
        /// How far behind the live edge each viewer's first picture (the cached keyframe) was, in ms.
        public var firstPictureBehindMs: [Int64]
        /// What viewers miss of this stream and why (B-frames, a broken sequence header...), once each.
        public var warnings: [String]
    }

    /// WHEP for a hub stream (published over RTMP): H.264 video repackaged into RTP for this viewer.
    func playBridged(_ key: StreamKey, source: Source, hub: StreamHub, offer: RemoteOffer) throws(WebRTCError) -> Session {
        let info = source.snapshot()
        if let codec = info.info.videoCodec, codec != "h264" {
            throw .unplayable("\(key) sends \(codec) video; WebRTC viewers of RTMP streams get H.264 only")
        }
        let profile = info.info.videoCodecString.flatMap { s -> UInt8? in
            // "avc1.64001f": profile_idc is the first byte.
            guard s.hasPrefix("avc1."), s.count >= 7 else { return nil }
            return UInt8(s.dropFirst(5).prefix(2), radix: 16)
        }
        var accepted: [AnswerSection] = []
        var video: (RTPCodec, UInt32, UInt32?)?
        for s in offer.sections where s.direction.receives && s.kind == .video && video == nil {
            guard var codec = CodecPolicy.bridgeVideoCodec(in: s, streamProfile: profile) else {
                throw .negotiation(.noCommonCodec(mid: s.mid, kind: s.kind.rawValue, offered: s.codecs.map(\.rtpmap),
                                                  supported: ["H264/90000 (packetization-mode=1)"]))
            }
            if !options.nack { codec.feedback.removeAll { $0 == "nack" } }
            let ssrc = UInt32.random(in: 2...UInt32.max)
            var rtxSSRC: UInt32?
            if codec.rtxPayloadType != nil && codec.feedback.contains("nack") {
                repeat { rtxSSRC = UInt32.random(in: 2...UInt32.max) } while rtxSSRC == ssrc
            }
            let label = key.description.replacingOccurrences(of: "/", with: "-")
            var section = AnswerSection(mid: s.mid, kind: .video, codec: codec, direction: .sendonly,
                                        sending: (ssrc: ssrc, rtxSSRC: rtxSSRC, cname: "liveswarm", stream: label, track: "\(label)-video"),
                                        rtcpRsize: s.rtcpRsize)
            // PLI is accepted but cannot reach an RTMP encoder; NACK is what repairs loss.
            section.feedback = ["nack", "nack pli"]
            accepted.append(section)
            video = (codec, ssrc, rtxSSRC)
        }
        guard let (codec, ssrc, rtxSSRC) = video else {
            throw .negotiation(.wrongDirection(mid: offer.sections.first?.mid ?? "-", expected: "a recvonly or sendrecv video section",
                                               got: offer.sections.map { "\($0.kind.rawValue) \($0.direction.rawValue)" }.joined(separator: ", ")))
        }
        let (transport, session) = try open(offer)
        let id = String(session.id.rawValue)
        let stream = key.description
        lock.withLock { sessions[id] = (.bridgeViewer, stream, transport) }
        let rtx = rtxSSRC.flatMap { r in codec.rtxPayloadType.map { (payloadType: $0, ssrc: r) } }
        let options = HubVideoSender.Options(catchUpSpeed: self.options.catchUpSpeed)
        let meter = bridgeMeter, warnings = bridgeWarnings, logger = self.logger
        // The hub viewer starts once SRTP is keyed: it gets the cached GOP then, and sends it at once.
        transport.onConnected { [weak self, weak transport] in
            guard let self, let transport else { return }
            let viewer: Viewer
            do {
                viewer = try hub.subscribe(key, protocolName: "webrtc", peer: "whep \(id)")
            } catch {
                logger.info("WHEP play: stream gone before the viewer connected", metadata: ["stream": "\(stream)", "session": "\(id)"])
                transport.close()
                return
            }
            let sender = HubVideoSender(viewer: viewer, source: source, transport: transport, payloadType: codec.payloadType, ssrc: ssrc,
                                        rtx: rtx, options: options, now: { hub.now }, meter: meter, warnings: warnings, logger: logger)
            let live = lock.withLock { () -> Bool in
                guard sessions[id] != nil else { return false }
                senders[id] = sender
                return true
            }
            guard live else {
                viewer.close()
                return
            }
            sender.onEnded { [weak transport] in transport?.close() }
            transport.onPacket { [weak sender] packet, isRTCP in
                if isRTCP { sender?.viewerRTCP(packet) }
            }
            sender.start()
        }
        transport.onClose { [weak self] reason in self?.ended(id, reason: reason) }
        logger.info("WHEP play (RTMP stream)", metadata: ["stream": "\(stream)", "session": "\(id)", "codec": "\(codec.rtpmap) \(codec.parameters ?? "")",
                                                          "streamCodec": "\(info.info.videoCodecString ?? "not known yet")"])
        return Session(id: id, answer: offer.answer(accepted, credentials: session.credentials, fingerprint: certificate.fingerprint,
                                                    candidates: port.candidates).text)
    }

    /// The RTMP streams played over WebRTC, with their viewers' counts summed.
    public func bridgeSnapshot() -> [BridgeSnapshot] {
        let all = lock.withLock { senders.values.map { ($0.source.key.description, $0.stats) } }
        var out: [String: BridgeSnapshot] = [:]
        for (stream, s) in all {
            var b = out[stream] ?? BridgeSnapshot(stream: stream, viewers: 0, framesSent: 0, packetsSent: 0, keyframesSent: 0, framesDropped: 0,
                                                  nonReferenceDropped: 0, reorderDropped: 0, retransmitted: 0, pictureLossRequests: 0,
                                                  firstFrameAfterMs: [], caughtUpAfterMs: [], firstPictureBehindMs: [], warnings: bridgeWarnings.warnings(stream))
            b.viewers += 1
            b.framesSent += s.framesSent
            b.packetsSent += s.packetsSent
            b.keyframesSent += s.keyframesSent
            b.framesDropped += s.framesDropped
            b.nonReferenceDropped += s.nonReferenceDropped
            b.reorderDropped += s.reorderDropped
            b.retransmitted += s.retransmitted
            b.pictureLossRequests += s.pictureLossRequests
            if let f = s.firstFrameAfterMs { b.firstFrameAfterMs.append(f) }
            if let c = s.caughtUpAfterMs { b.caughtUpAfterMs.append(c) }
            if let d = s.firstPictureBehindMs { b.firstPictureBehindMs.append(d) }
            out[stream] = b
        }
        return out.values.sorted { $0.stream < $1.stream }
    }
}
