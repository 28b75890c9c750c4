import Audio
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import RTP
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

    /// RTMP streams to WebRTC: the stream's AAC is sent as stereo Opus; the answer says so (RFC 7587 section 7),
    /// so browsers decode both channels.
    public static func bridgeAudioCodec(in section: RemoteOffer.Section) -> RTPCodec? {
        guard section.kind == .audio, var opus = publishCodec(for: section) else { return nil }
        var parameters = (opus.parameters ?? "").split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        parameters.removeAll { $0.hasPrefix("stereo=") || $0.hasPrefix("sprop-stereo=") || $0.isEmpty }
        opus.parameters = (parameters + ["stereo=1", "sprop-stereo=1"]).joined(separator: ";")
        opus.feedback = []
        return opus
    }
}

/// One WHEP session of an RTMP stream: what sends its video and its audio, and its sender reports.
struct BridgedViewer {
    var stream: StreamKey
    var video: HubVideoSender?
    var audio: (sender: OpusSender, feed: OpusFeed)?
    var reports: RepeatedTask?
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
        /// Viewers taking the stream's audio, and the Opus packets sent to them all.
        public var audioViewers: Int
        public var audioPacketsSent: Int
        /// The longest pause in any viewer's audio sending, and the pauses over 60 ms (heard as gaps), summed.
        public var audioLongestSendGapMs: Double
        public var audioSendGapsOver60ms: Int
        /// The stream's AAC-to-Opus transcoder (one per stream, whatever the number of viewers), while it runs.
        public var audio: AudioSnapshot?
        /// What viewers miss of this stream and why (B-frames, a broken sequence header, audio not AAC...), once each.
        public var warnings: [String]
    }

    public struct AudioSnapshot: Sendable, Codable {
        /// The publisher's audio codec as last seen.
        public var codec: String?
        public var inputRate: Int
        public var inputChannels: Int
        public var bitrate: Int
        public var accessUnits: Int
        public var decodeErrors: Int
        public var packets: Int
        public var silenceMs: Double
        public var droppedMs: Double
        public var restarts: Int
        public var skippedBehindLiveEdge: Int
        /// The longest time between two access units from the publisher (ms).
        public var longestInputGapMs: Double
        /// From an access unit's arrival in the hub to the Opus packets it completed going to the viewers' senders.
        public var transcodeDelayMeanMs: Double
        public var transcodeDelayMaxMs: Double
    }

    /// WHEP for a hub stream (published over RTMP): H.264 video repackaged into RTP, AAC transcoded to Opus, each
    /// when both the stream and the offer have it.
    func playBridged(_ key: StreamKey, source: Source, hub: StreamHub, offer: RemoteOffer) throws(WebRTCError) -> Session {
        let snapshot = source.snapshot()
        let info = snapshot.info
        let knownNothing = info.videoCodec == nil && info.audioCodec == nil
        let offersVideo = offer.sections.contains { $0.direction.receives && $0.kind == .video }
        if let codec = info.videoCodec, codec != "h264", offersVideo {
            throw .unplayable("\(key) sends \(codec) video; WebRTC viewers of RTMP streams get H.264 only")
        }
        let profile = info.videoCodecString.flatMap { s -> UInt8? in
            // "avc1.64001f": profile_idc is the first byte.
            guard s.hasPrefix("avc1."), s.count >= 7 else { return nil }
            return UInt8(s.dropFirst(5).prefix(2), radix: 16)
        }
        let label = key.description.replacingOccurrences(of: "/", with: "-")
        var accepted: [AnswerSection] = []
        var video: (codec: RTPCodec, ssrc: UInt32, rtxSSRC: UInt32?)?
        var audio: (codec: RTPCodec, ssrc: UInt32)?
        for s in offer.sections where s.direction.receives && s.kind == .video && video == nil && (info.videoCodec != nil || knownNothing) {
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
            var section = AnswerSection(mid: s.mid, kind: .video, codec: codec, direction: .sendonly,
                                        sending: (ssrc: ssrc, rtxSSRC: rtxSSRC, cname: "liveswarm", stream: label, track: "\(label)-video"),
                                        rtcpRsize: s.rtcpRsize)
            // PLI is accepted but cannot reach an RTMP encoder; NACK is what repairs loss.
            section.feedback = ["nack", "nack pli"]
            accepted.append(section)
            video = (codec, ssrc, rtxSSRC)
        }
        let audioIsAAC = info.audioCodec == "aac" || knownNothing
        for s in offer.sections where s.direction.receives && s.kind == .audio && audio == nil && audioIsAAC {
            guard let codec = CodecPolicy.bridgeAudioCodec(in: s) else {
                throw .negotiation(.noCommonCodec(mid: s.mid, kind: s.kind.rawValue, offered: s.codecs.map(\.rtpmap), supported: ["opus/48000/2"]))
            }
            let ssrc = UInt32.random(in: 2...UInt32.max)
            var section = AnswerSection(mid: s.mid, kind: .audio, codec: codec, direction: .sendonly,
                                        sending: (ssrc: ssrc, rtxSSRC: nil, cname: "liveswarm", stream: label, track: "\(label)-audio"),
                                        rtcpRsize: s.rtcpRsize)
            section.feedback = []
            accepted.append(section)
            audio = (codec, ssrc)
        }
        if let codec = info.audioCodec, codec != "aac", offer.sections.contains(where: { $0.direction.receives && $0.kind == .audio }),
           bridgeWarnings.note(stream: key.description, session: snapshot.sessions,
                               "the stream's audio is \(codec): WebRTC viewers get no audio (AAC is transcoded to Opus, nothing else)") {
            logger.warning("RTMP to WebRTC: \(key) sends \(codec) audio; WebRTC viewers get video only", metadata: ["stream": "\(key)"])
        }
        guard video != nil || audio != nil else {
            let has = [info.videoCodec.map { "\($0) video" }, info.audioCodec.map { "\($0) audio" }].compactMap { $0 }
            let takes = offer.sections.filter(\.direction.receives).map(\.kind.rawValue)
            throw .unplayable("\(key) has \(has.isEmpty ? "no media yet" : has.joined(separator: " and ")); the offer receives "
                              + "\(takes.isEmpty ? "nothing" : takes.joined(separator: " and ")), and WebRTC viewers get H.264 video and AAC audio (as Opus)")
        }
        let (transport, session) = try open(offer, use: .whep)
        let id = String(session.id.rawValue)
        let stream = key.description
        lock.withLock { sessions[id] = (.bridgeViewer, stream, transport) }
        let (videoPlan, audioPlan) = (video, audio)
        let senderOptions = HubVideoSender.Options(catchUpSpeed: self.options.catchUpSpeed)
        let meter = bridgeMeter, warnings = bridgeWarnings, logger = self.logger
        // Delivery starts once SRTP is keyed: the video's hub viewer gets the cached GOP then and sends it at once;
        // the audio joins the stream's transcoder at the live edge.
        transport.onConnected { [weak self, weak transport] in
            guard let self, let transport else { return }
            var bridged = BridgedViewer(stream: key)
            if let (codec, ssrc, rtxSSRC) = videoPlan {
                let viewer: Viewer
                do {
                    viewer = try hub.subscribe(key, protocolName: "webrtc", peer: "whep \(id)")
                } catch {
                    logger.info("WHEP play: stream gone before the viewer connected", metadata: ["stream": "\(stream)", "session": "\(id)"])
                    transport.close()
                    return
                }
                let rtx = rtxSSRC.flatMap { r in codec.rtxPayloadType.map { (payloadType: $0, ssrc: r) } }
                bridged.video = HubVideoSender(viewer: viewer, source: source, transport: transport, payloadType: codec.payloadType, ssrc: ssrc,
                                               rtx: rtx, options: senderOptions, now: { hub.now }, meter: meter, warnings: warnings, logger: logger)
            }
            if let (codec, ssrc) = audioPlan {
                let sender = OpusSender(transport: transport, payloadType: codec.payloadType, ssrc: ssrc)
                if let feed = joinFeed(key, hub: hub, sender: sender) {
                    bridged.audio = (sender, feed)
                } else if bridged.video == nil {
                    logger.info("WHEP play: stream gone before the viewer connected", metadata: ["stream": "\(stream)", "session": "\(id)"])
                    transport.close()
                    return
                }
            }
            let live = lock.withLock { () -> Bool in
                guard sessions[id] != nil else { return false }
                bridged.reports = Self.startSenderReports(transport: transport, source: source, video: bridged.video, audio: bridged.audio?.sender)
                self.bridged[id] = bridged
                return true
            }
            guard live else {
                self.stop(bridged)
                return
            }
            bridged.video?.onEnded { [weak transport] in transport?.close() }
            bridged.audio?.sender.onEnded { [weak transport] in transport?.close() }
            let videoSender = bridged.video
            transport.onPacket { [weak videoSender] packet, isRTCP in
                if isRTCP { videoSender?.viewerRTCP(packet) }
            }
            bridged.video?.start()
        }
        transport.onClose { [weak self] reason in self?.ended(id, reason: reason) }
        logger.info("WHEP play (RTMP stream)", metadata: ["stream": "\(stream)", "session": "\(id)",
                                                          "video": "\(video.map { "\($0.codec.rtpmap) \($0.codec.parameters ?? "")" } ?? "none")",
                                                          "audio": "\(audio.map { "\($0.codec.rtpmap) from \(info.audioCodecString ?? "AAC")" } ?? "none")",
                                                          "streamCodec": "\(info.videoCodecString ?? "not known yet")"])
        return Session(id: id, answer: offer.answer(accepted, credentials: session.credentials, fingerprint: certificate.fingerprint,
                                                    candidates: port.candidates).text)
    }

    /// AAC-to-Opus transcoders running (one per stream with audio viewers).
    public var audioTranscoders: Int { lock.withLock { feeds.count } }

    /// The stream's transcoder, started for its first audio viewer. Nil when the stream is gone.
    func joinFeed(_ key: StreamKey, hub: StreamHub, sender: OpusSender) -> OpusFeed? {
        let (feed, started) = lock.withLock { () -> (OpusFeed?, Bool) in
            if let feed = feeds[key], feed.add(sender) { return (feed, false) }
            var o = AACToOpus.Options()
            o.bitrate = options.opusBitrate
            guard let feed = try? OpusFeed(key: key, hub: hub, options: o, eventLoop: eventLoops.next(),
                                           warnings: bridgeWarnings, logger: logger) else { return (nil, false) }
            _ = feed.add(sender)
            feeds[key] = feed
            return (feed, true)
        }
        if started {
            logger.info("RTMP to WebRTC: AAC to Opus started", metadata: ["stream": "\(key)", "bitrate": "\(options.opusBitrate)"])
            feed?.start()
        }
        return feed
    }

    func stop(_ bridged: BridgedViewer) {
        bridged.reports?.cancel()
        bridged.video?.stop()
        guard let (sender, feed) = bridged.audio else { return }
        let last = lock.withLock { () -> Bool in
            guard feed.remove(sender) else { return false }
            if feeds[bridged.stream] === feed { feeds[bridged.stream] = nil }
            return true
        }
        if last {
            logger.info("RTMP to WebRTC: AAC to Opus stopped (no audio viewers)", metadata: ["stream": "\(bridged.stream)", "stats": "\(feed.stats.transcoder)"])
            feed.stop()
        }
    }

    /// RTCP sender reports for each track, every second from shortly after the start: the browser needs two per
    /// track before it lines audio and video up. Both tracks' reports map stream time to NTP the same way.
    static func startSenderReports(transport: WebRTCTransport, source: Source, video: HubVideoSender?, audio: OpusSender?) -> RepeatedTask {
        let anchor = NIOLockedValueBox<StreamNTPClock?>(nil)
        return transport.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(250), delay: .seconds(1)) { [weak transport] _ in
            guard let transport else { return }
            let clock = anchor.withLockedValue { a in
                if a == nil { a = StreamNTPClock(streamMs: Double(source.lastTimestamp), unixNanoseconds: StreamNTPClock.wallClockNanoseconds()) }
                return a!
            }
            let reports = [video?.senderReport(ntp: clock.ntp), audio?.senderReport(ntp: clock.ntp)].compactMap { $0 }
            for r in reports {
                transport.send(RTCPPacket.writeCompound([.senderReport(r), .sourceDescription(.init(chunks: [.init(ssrc: r.ssrc, cname: "liveswarm")]))]),
                               isRTCP: true)
            }
        }
    }

    /// The RTMP streams played over WebRTC, with their viewers' counts summed.
    public func bridgeSnapshot() -> [BridgeSnapshot] {
        let (all, feeds) = lock.withLock { (Array(bridged.values), self.feeds) }
        var out: [String: BridgeSnapshot] = [:]
        for v in all {
            let stream = v.stream.description
            var b = out[stream] ?? BridgeSnapshot(stream: stream, viewers: 0, framesSent: 0, packetsSent: 0, keyframesSent: 0, framesDropped: 0,
                                                  nonReferenceDropped: 0, reorderDropped: 0, retransmitted: 0, pictureLossRequests: 0,
                                                  firstFrameAfterMs: [], caughtUpAfterMs: [], firstPictureBehindMs: [],
                                                  audioViewers: 0, audioPacketsSent: 0, audioLongestSendGapMs: 0, audioSendGapsOver60ms: 0,
                                                  audio: feeds[v.stream].map { Self.audioSnapshot($0.stats) }, warnings: bridgeWarnings.warnings(stream))
            b.viewers += 1
            if let s = v.video?.stats {
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
            }
            if let a = v.audio {
                let s = a.sender.stats
                b.audioViewers += 1
                b.audioPacketsSent += s.packetsSent
                b.audioLongestSendGapMs = max(b.audioLongestSendGapMs, s.longestSendGapMs)
                b.audioSendGapsOver60ms += s.sendGapsOver60ms
            }
            out[stream] = b
        }
        return out.values.sorted { $0.stream < $1.stream }
    }

    static func audioSnapshot(_ s: OpusFeed.Stats) -> AudioSnapshot {
        let t = s.transcoder
        return AudioSnapshot(codec: s.codec, inputRate: t.inputRate, inputChannels: t.inputChannels, bitrate: t.bitrate, accessUnits: t.accessUnits,
                             decodeErrors: t.decodeErrors, packets: t.packets, silenceMs: t.silenceMs, droppedMs: t.droppedMs, restarts: t.restarts,
                             skippedBehindLiveEdge: s.skippedBehindLiveEdge, longestInputGapMs: s.longestInputGapMs,
                             transcodeDelayMeanMs: s.transcodeDelay.meanMs, transcodeDelayMaxMs: s.transcodeDelay.maxMs)
    }
}
