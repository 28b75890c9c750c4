import DTLS
import ICE
import Logging
import NIOConcurrencyHelpers
import NIOCore
import SDP
import StreamHub

/// Why a WHIP or WHEP request cannot be served.
public enum WebRTCError: Error, Equatable, Sendable, CustomStringConvertible {
    case negotiation(NegotiationError)
    /// Someone already publishes this stream over WebRTC.
    case alreadyPublished(String)
    /// Nobody publishes this stream, over WebRTC or RTMP.
    case notPublished(String)
    /// The stream is live but its media cannot be sent over WebRTC (a video codec other than H.264).
    case unplayable(String)
    /// The media port is not listening, or DTLS could not be set up.
    case unavailable(String)

    public var description: String {
        switch self {
        case .negotiation(let e): e.description
        case .alreadyPublished(let s): "\(s) is already being published"
        case .notPublished(let s): "\(s) is not being published"
        case .unplayable(let why): why
        case .unavailable(let why): why
        }
    }
}

/// The WebRTC streams of the server: one ``Router`` per stream published over WHIP, its viewers over WHEP, and
/// the sessions (WHIP/WHEP resources) that own them. A session ends on DELETE or when its ICE consent expires;
/// a publisher's end closes its viewers.
public final class RouterRegistry: @unchecked Sendable {
    public struct Session: Sendable {
        public var id: String
        public var answer: String
    }

    public struct Snapshot: Sendable, Codable {
        public var stream: String
        public var tracks: [String]
        public var viewers: Int
        public var packetsIn: Int
        /// Packets sent again for viewers' NACKs.
        public var retransmitted: Int
        /// Packets lost on the way from the publisher that LiveSwarm asked for (NACK), and those that came back.
        public var nacksToPublisher: Int
        public var recoveredFromPublisher: Int
        /// The hub stream this WHIP stream feeds (RTMP, HTTP-FLV and HLS viewers), or why it feeds none.
        public var hub: HubIngest.Stats?
        public var hubRefused: String?
    }

    enum Role { case publisher, viewer, bridgeViewer }

    public struct Options: Sendable, Equatable {
        /// Answer viewers' NACKs from a retransmission buffer (and offer `nack` to them), and NACK the publisher
        /// for packets lost on the way in. Off only to measure what it buys.
        public var nack = true
        /// RTMP streams to WebRTC viewers: how fast a new viewer is brought from the cached GOP to the live edge.
        public var catchUpSpeed = 4.0
        /// RTMP streams to WebRTC viewers: the Opus bitrate their AAC is transcoded to (see ``AACToOpus/Options``).
        public var opusBitrate = 96_000
        /// WHIP streams become hub streams too (RTMP, HTTP-FLV, HLS, LL-HLS and P2P viewers): H.264 is preferred in
        /// the answer, and Opus is transcoded to AAC at this bitrate.
        public var whipToHub = true
        public var aacBitrate = 128_000
        public init() {}
    }

    let port: MediaPort
    let certificate: Certificate
    let options: Options
    let eventLoops: any EventLoopGroup
    let logger: Logger
    let lock = NIOLock()
    var routers: [String: Router] = [:]
    var sessions: [String: (role: Role, stream: String, transport: WebRTCTransport)] = [:]
    /// The stream hub, whose (RTMP-published) streams WHEP viewers can play through the bridge.
    public let hub: StreamHub?
    /// WHEP sessions of RTMP streams, and each such stream's AAC-to-Opus transcoder while it has audio viewers.
    var bridged: [String: BridgedViewer] = [:]
    var feeds: [StreamKey: OpusFeed] = [:]
    /// WHIP streams' hub ingests, and why a WHIP stream has none.
    var ingests: [String: HubIngest] = [:]
    var hubRefusals: [String: String] = [:]
    /// Server-added video delay of the RTMP-to-WebRTC bridge.
    public let bridgeMeter = BridgeMeter()
    let bridgeWarnings = BridgeWarnings()

    /// `eventLoops` run the DTLS retransmission timers.
    public init(port: MediaPort, certificate: Certificate, options: Options = Options(), hub: StreamHub? = nil,
                eventLoops: any EventLoopGroup, logger: Logger) {
        (self.port, self.certificate, self.options, self.eventLoops, self.logger) = (port, certificate, options, eventLoops, logger)
        self.hub = hub
    }

    /// WHIP: the offer's audio and video become the producers of `stream`.
    public func publish(stream: String, offer text: String) throws(WebRTCError) -> Session {
        let offer = try Self.parse(text)
        let key = hub != nil && options.whipToHub ? Self.key(stream) : nil
        let (accepted, tracks, transportCCID) = try publishPlan(offer, preferH264: key != nil)
        if lock.withLock({ routers[stream] != nil }) { throw .alreadyPublished(stream) }
        // The hub name is taken first: an RTMP publisher of the same name refuses this one before any session opens.
        var hubPublisher: Publisher?
        var refused: String?
        if let hub, let key {
            if let video = tracks.first(where: { $0.0.kind == .video }), video.1.name.uppercased() != "H264" {
                refused = "the offer has no H.264 (only \(video.1.rtpmap)): RTMP, HTTP-FLV and HLS viewers need H.264, and LiveSwarm does not transcode video"
            } else {
                do { hubPublisher = try hub.publish(key, protocolName: "whip", peer: "webrtc") } catch {
                    throw .alreadyPublished("\(stream) (over RTMP)")
                }
            }
        }
        let transport: WebRTCTransport, session: MediaSession
        do { (transport, session) = try open(offer, use: .whip) } catch {
            hubPublisher?.unpublish()
            throw error
        }
        let producers = makeProducers(tracks, publisher: transport)
        let router = Router(name: stream, publisher: transport, producers: producers, transportCCID: transportCCID,
                            eventLoop: eventLoops.next())
        let ingest = hubPublisher.map { p in
            HubIngest(key: key!, publisher: p, video: producers.first { $0.kind == .video }, audio: producers.first { $0.kind == .audio },
                      aacBitrate: options.aacBitrate, eventLoop: eventLoops.next(), logger: logger)
        }
        let taken = lock.withLock { () -> Bool in
            if routers[stream] != nil { return true }
            routers[stream] = router
            sessions[String(session.id.rawValue)] = (.publisher, stream, transport)
            ingests[stream] = ingest
            hubRefusals[stream] = refused
            return false
        }
        if taken {
            transport.close()
            ingest?.stop()
            throw .alreadyPublished(stream)
        }
        if let ingest { for p in producers { p.add(sink: ingest) } }
        transport.onPacket { [weak router] packet, isRTCP in router?.publisherPacket(packet, isRTCP: isRTCP) }
        let id = String(session.id.rawValue)
        transport.onClose { [weak self] reason in self?.ended(id, reason: reason) }
        logger.info("WHIP publish", metadata: ["stream": "\(stream)", "session": "\(id)",
                                               "tracks": "\(producers.map { "\($0.kind) \($0.codec.rtpmap)" })",
                                               "hub": "\(ingest != nil ? "yes: RTMP, HTTP-FLV, HLS and P2P viewers can watch" : refused ?? "no")"])
        return Session(id: id, answer: offer.answer(accepted, credentials: session.credentials, fingerprint: certificate.fingerprint,
                                                    candidates: port.candidates).text)
    }

    /// What a publisher's offer becomes: the answer's sections (recvonly), a producer's worth for each sending
    /// section, and the transport-wide congestion control extension id. `videoCodec` ("VP8", "H264") limits video
    /// to one codec (rooms); nil takes ``CodecPolicy/publishCodec(for:)``'s choice.
    func publishPlan(_ offer: RemoteOffer, videoCodec: String? = nil, preferH264: Bool = false) throws(WebRTCError)
        -> (accepted: [AnswerSection], tracks: [(RemoteOffer.Section, RTPCodec)], transportCCID: UInt8?) {
        var accepted: [AnswerSection] = []
        var tracks: [(RemoteOffer.Section, RTPCodec)] = []
        var transportCCID: UInt8?
        for s in offer.sections {
            guard s.direction.sends else { throw .negotiation(.wrongDirection(mid: s.mid, expected: "sendonly or sendrecv", got: s.direction.rawValue)) }
            guard let codec = CodecPolicy.publishCodec(for: s, only: s.kind == .video ? videoCodec : nil, preferH264: preferH264) else {
                throw .negotiation(.noCommonCodec(mid: s.mid, kind: s.kind.rawValue, offered: s.codecs.map(\.rtpmap),
                                                  supported: s.kind == .video && videoCodec != nil ? ["\(videoCodec!)/90000"] : CodecPolicy.supported(s.kind)))
            }
            guard s.ssrc != nil else { throw .negotiation(.missingSSRC(mid: s.mid)) }
            var section = AnswerSection(mid: s.mid, kind: s.kind, codec: codec, direction: .recvonly, rtcpRsize: s.rtcpRsize)
            // Transport-wide congestion control: the publisher numbers its packets, LiveSwarm reports their
            // arrival, and the publisher's bitrate can grow beyond its cautious start.
            if let id = s.extensions[CodecPolicy.transportCCExtension], codec.feedback.contains("transport-cc") {
                section.extensions = [(CodecPolicy.transportCCExtension, id)]
                section.feedback.insert("transport-cc")
                transportCCID = id
            }
            // The audio level of each packet (RFC 6464), read by rooms for the active speaker.
            if s.kind == .audio, let id = s.extensions[CodecPolicy.audioLevelExtension] {
                section.extensions.append((CodecPolicy.audioLevelExtension, id))
            }
            accepted.append(section)
            tracks.append((s, codec))
        }
        return (accepted, tracks, transportCCID)
    }

    func makeProducers(_ tracks: [(RemoteOffer.Section, RTPCodec)], publisher transport: WebRTCTransport) -> [Producer] {
        tracks.map { s, codec in
            Producer(kind: s.kind, codec: codec, ssrc: s.ssrc!, rtxSSRC: s.rtxSSRC, publisher: transport,
                     keepHistory: options.nack && s.kind == .video,
                     requestRetransmissions: options.nack && s.kind == .video && codec.feedback.contains("nack"),
                     audioLevelID: s.kind == .audio ? s.extensions[CodecPolicy.audioLevelExtension] : nil)
        }
    }

    /// WHEP: a consumer for each producer of `stream` the offer can receive; sections with nothing to send
    /// are rejected.
    public func play(stream: String, offer text: String) throws(WebRTCError) -> Session {
        let offer = try Self.parse(text)
        guard let router = lock.withLock({ routers[stream] }) else {
            let parts = stream.split(separator: "/", maxSplits: 1).map(String.init)
            guard let hub, parts.count == 2, let key = StreamKey(app: parts[0], stream: parts[1]),
                  let source = hub.source(key) else { throw .notPublished(stream) }
            return try playBridged(key, source: source, hub: hub, offer: offer)
        }
        var accepted: [AnswerSection] = []
        var plan: [(Producer, RTPCodec, UInt32, UInt32?)] = []
        var used = Set<ObjectIdentifier>()
        for s in offer.sections where s.direction.receives {
            guard let producer = router.producers.first(where: { $0.kind == s.kind && !used.contains(ObjectIdentifier($0)) }) else { continue }
            guard var codec = CodecPolicy.playCodec(matching: producer.codec, in: s) else {
                throw .negotiation(.noCommonCodec(mid: s.mid, kind: s.kind.rawValue, offered: s.codecs.map(\.rtpmap),
                                                  supported: [producer.codec.rtpmap]))
            }
            if !options.nack { codec.feedback.removeAll { $0 == "nack" } }
            used.insert(ObjectIdentifier(producer))
            let ssrc = UInt32.random(in: 2...UInt32.max)
            // Retransmissions go on an RTX stream of their own when the viewer offered RTX with NACK (the answer
            // then carries its payload type and the FID group); else on the media SSRC.
            var rtxSSRC: UInt32?
            if codec.rtxPayloadType != nil && codec.feedback.contains("nack") {
                repeat { rtxSSRC = UInt32.random(in: 2...UInt32.max) } while rtxSSRC == ssrc
            }
            let label = stream.replacingOccurrences(of: "/", with: "-")
            accepted.append(AnswerSection(mid: s.mid, kind: s.kind, codec: codec, direction: .sendonly,
                                          sending: (ssrc: ssrc, rtxSSRC: rtxSSRC, cname: "liveswarm", stream: label, track: "\(label)-\(s.kind)"),
                                          rtcpRsize: s.rtcpRsize))
            plan.append((producer, codec, ssrc, rtxSSRC))
        }
        guard !plan.isEmpty else {
            throw .negotiation(.wrongDirection(mid: offer.sections.first?.mid ?? "-", expected: "recvonly or sendrecv for a published track",
                                               got: offer.sections.first?.direction.rawValue ?? "-"))
        }
        let (transport, session) = try open(offer, use: .whep)
        let consumers = plan.map { producer, codec, ssrc, rtxSSRC in
            Consumer(producer: producer, payloadType: codec.payloadType, ssrc: ssrc,
                     rtx: rtxSSRC.flatMap { r in codec.rtxPayloadType.map { (payloadType: $0, ssrc: r) } }, transport: transport)
        }
        let id = String(session.id.rawValue)
        lock.withLock { sessions[id] = (.viewer, stream, transport) }
        // Consumers start once SRTP is keyed, with a keyframe request, so the first picture comes at once.
        transport.onConnected { [weak router, weak transport] in
            guard let router, let transport else { return }
            router.addViewer(transport, consumers: consumers)
        }
        transport.onPacket { [weak router, weak transport] packet, isRTCP in
            if isRTCP, let transport { router?.viewerRTCP(packet, from: transport) }
        }
        transport.onClose { [weak self] reason in self?.ended(id, reason: reason) }
        logger.info("WHEP play", metadata: ["stream": "\(stream)", "session": "\(id)"])
        return Session(id: id, answer: offer.answer(accepted, credentials: session.credentials, fingerprint: certificate.fingerprint,
                                                    candidates: port.candidates).text)
    }

    /// DELETE of a WHIP/WHEP resource. False when there is no such session.
    public func end(_ id: String) -> Bool {
        guard let s = lock.withLock({ sessions[id] }) else { return false }
        s.transport.close()
        return true
    }

    public func snapshot() -> [Snapshot] {
        let (all, ingests, refusals) = lock.withLock { (Array(routers.values), self.ingests, hubRefusals) }
        return all.map { r in
            Snapshot(stream: r.name, tracks: r.producers.map { "\($0.kind.rawValue) \($0.codec.rtpmap)" }, viewers: r.viewerCount,
                     packetsIn: r.producers.reduce(0) { $0 + $1.packets }, retransmitted: r.retransmitted,
                     nacksToPublisher: r.publisherNACKs.requested, recoveredFromPublisher: r.publisherNACKs.recovered,
                     hub: ingests[r.name]?.snapshot, hubRefused: refusals[r.name])
        }.sorted { $0.stream < $1.stream }
    }

    func ended(_ id: String, reason: String) {
        var endedIngest: HubIngest?
        let (entry, router) = lock.withLock { () -> ((role: Role, stream: String, transport: WebRTCTransport)?, Router?) in
            guard let e = sessions.removeValue(forKey: id) else { return (nil, nil) }
            if e.role == .publisher, routers[e.stream]?.publisher === e.transport {
                endedIngest = ingests.removeValue(forKey: e.stream)
                hubRefusals[e.stream] = nil
                return (e, routers.removeValue(forKey: e.stream))
            }
            return (e, routers[e.stream])
        }
        guard let entry else { return }
        switch entry.role {
        case .publisher:
            logger.info("WHIP publish ended", metadata: ["stream": "\(entry.stream)", "session": "\(id)", "reason": "\(reason)"])
            router?.close()
            endedIngest?.stop()
        case .viewer:
            logger.info("WHEP play ended", metadata: ["stream": "\(entry.stream)", "session": "\(id)", "reason": "\(reason)"])
            router?.removeViewer(entry.transport)
        case .bridgeViewer:
            let bridged = lock.withLock { self.bridged.removeValue(forKey: id) }
            logger.info("WHEP play ended", metadata: ["stream": "\(entry.stream)", "session": "\(id)", "reason": "\(reason)",
                                                      "video": "\(bridged?.video.map { "\($0.stats)" } ?? "-")",
                                                      "audio": "\(bridged?.audio.map { "\($0.sender.stats)" } ?? "-")"])
            if let bridged { stop(bridged) }
        }
    }

    /// The hub's name for a WHIP stream ("APP/STREAM").
    static func key(_ stream: String) -> StreamKey? {
        let parts = stream.split(separator: "/", maxSplits: 1).map(String.init)
        return parts.count == 2 ? StreamKey(app: parts[0], stream: parts[1]) : nil
    }

    static func parse(_ text: String) throws(WebRTCError) -> RemoteOffer {
        do { return try RemoteOffer(parsing: text) } catch { throw .negotiation(error) }
    }

    func open(_ offer: RemoteOffer, use: MediaPort.Use) throws(WebRTCError) -> (WebRTCTransport, MediaSession) {
        let transport: WebRTCTransport
        do {
            transport = try WebRTCTransport(certificate: certificate, peerFingerprint: offer.fingerprint,
                                            eventLoop: eventLoops.next(), logger: logger)
        } catch {
            throw .unavailable("DTLS: \(error)")
        }
        do {
            let session = try port.openSession(remoteUfrag: offer.ufrag, handler: transport, use: use)
            transport.attach(session)
            return (transport, session)
        } catch {
            throw .unavailable("\(error)")
        }
    }
}
