import ICE
import NIOConcurrencyHelpers
import SDP

/// Why a room participant's offer is not taken.
public enum RoomMediaError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Not SDP, or SDP the media port cannot answer (no BUNDLE, no fingerprint...).
    case badOffer(String)
    /// The publisher's offer lacks the room's video codec (or Opus).
    case codec(String)
    case tooManyTracks(offered: Int, limit: Int)
    /// Something this version does not do.
    case unsupported(String)
    /// The media port is not running, or DTLS could not be set up.
    case unavailable(String)

    public var description: String {
        switch self {
        case .badOffer(let why), .codec(let why), .unsupported(let why), .unavailable(let why): why
        case .tooManyTracks(let offered, let limit): "the offer sends \(offered) tracks; a participant may publish \(limit)"
        }
    }
}

/// The media of every room: each participant's publish transport (a ``Router`` whose producers are its tracks)
/// and its ``Subscriber``, which gets a ``Consumer`` of everyone else's tracks. The room's membership is the
/// signaling's business; this only forwards, keyed by room and participant id.
public final class RoomForwarder: @unchecked Sendable {
    struct Member {
        var publisher: Router?
        var publishSession: MediaSession?
        var publishUfrag: String?
        /// The publish answer, given again for an unchanged re-offer.
        var publishAnswer: [AnswerSection] = []
        /// Track id (`PARTICIPANT-MID`, then `PARTICIPANT-MID-N` for the Nth publish PeerConnection) to its producer.
        var tracks: [(id: String, mid: String, producer: Producer)] = []
        /// Publish PeerConnections this participant has had.
        var publishGeneration = 0
        var subscriber: Subscriber?
    }

    public struct PublishedTrack: Sendable, Equatable {
        public var id: String
        public var kind: MediaKind
        public var mid: String
    }

    let registry: RouterRegistry
    /// "VP8" or "H264".
    public let videoCodec: String
    let lock = NIOLock()
    var rooms: [String: [String: Member]] = [:]
    var restartCount = 0
    /// Rooms whose participants are hub streams too (``setBroadcast(room:enabled:)``), and each participant's ingest.
    var broadcastRooms: Set<String> = []
    var ingests: [String: [String: HubIngest]] = [:]
    /// Held through a whole ``reconcileHub(room:participant:)``, so that two of them never start two ingests.
    let hubLock = NIOLock()
    /// ICE restarts of room transports since start.
    public var iceRestarts: Int { lock.withLock { restartCount } }
    /// Media moved to another address of a peer without a restart, on any of the media port's sessions, since start.
    public var icePairSwitches: Int { registry.port.pairSwitchCount }
    let publisherClosed: @Sendable (_ room: String, _ participant: String) -> Void

    /// `publisherClosed` is called when a publish transport ends by itself (ICE consent expired, DTLS failed).
    public init(registry: RouterRegistry, videoCodec: String, publisherClosed: @escaping @Sendable (String, String) -> Void) {
        (self.registry, self.videoCodec, self.publisherClosed) = (registry, videoCodec, publisherClosed)
    }

    /// The publish PeerConnection's offer: each sending section becomes a track of the participant.
    public func publish(room: String, participant pid: String, offer text: String, maxTracks: Int) throws(RoomMediaError)
        -> (answer: String, tracks: [PublishedTrack]) {
        let offer: RemoteOffer
        do { offer = try RemoteOffer(parsing: text) } catch { throw .badOffer(error.description) }
        var existing = lock.withLock { rooms[room]?[pid] }
        if let router = existing?.publisher, router.publisher.peerFingerprint != offer.fingerprint {
            // Another DTLS certificate: a new PeerConnection for the same seat (the page was reloaded and resumed).
            // The old transport and its tracks end; the new one publishes tracks with new ids.
            dropPublisher(room: room, participant: pid, router: router)
            existing = lock.withLock { rooms[room]?[pid] }
        }
        if let existing, let router = existing.publisher, let session = existing.publishSession {
            return try republish(room: room, participant: pid, offer: offer, existing: existing, router: router, session: session,
                                 maxTracks: maxTracks)
        }
        let sending = offer.sections.filter(\.direction.sends).count
        guard sending <= maxTracks else { throw .tooManyTracks(offered: sending, limit: maxTracks) }
        let plan = try publishPlan(offer)
        let (transport, session): (WebRTCTransport, MediaSession)
        do throws(WebRTCError) { (transport, session) = try registry.open(offer, use: .rooms) } catch { throw .unavailable(error.description) }
        let producers = registry.makeProducers(plan.tracks, publisher: transport)
        let router = Router(name: "\(room)/\(pid)", publisher: transport, producers: producers, transportCCID: plan.transportCCID,
                            eventLoop: registry.eventLoops.next())
        let generation = (existing?.publishGeneration ?? 0) + 1
        let tracks = zip(plan.tracks, producers).map { (t, p) in
            (id: generation == 1 ? "\(pid)-\(t.0.mid)" : "\(pid)-\(t.0.mid)-\(generation)", mid: t.0.mid, producer: p)
        }
        let stored = lock.withLock { () -> Bool in
            // Gone meanwhile (left), or published twice at once: the first one stands.
            guard rooms[room]?[pid]?.publisher == nil else { return false }
            var m = rooms[room]?[pid] ?? Member()
            m.publishGeneration = generation
            (m.publisher, m.publishSession, m.publishUfrag, m.publishAnswer, m.tracks) = (router, session, offer.ufrag, plan.accepted, tracks)
            rooms[room, default: [:]][pid] = m
            return true
        }
        guard stored else {
            router.close()
            transport.close()
            throw .unsupported("publish again only after the first answer")
        }
        transport.onPacket { [weak router] packet, isRTCP in router?.publisherPacket(packet, isRTCP: isRTCP) }
        transport.onClose { [weak self] reason in self?.publishTransportClosed(room: room, participant: pid, router: router, reason: reason) }
        registry.logger.info("room publish", metadata: ["room": "\(room)", "participant": "\(pid)",
                                                        "tracks": "\(producers.map { "\($0.kind) \($0.codec.rtpmap)" })"])
        reconcileHub(room: room, participant: pid)
        return (offer.answer(plan.accepted, credentials: session.credentials, fingerprint: registry.certificate.fingerprint,
                             candidates: registry.port.candidates).text,
                tracks.map { PublishedTrack(id: $0.id, kind: $0.producer.kind, mid: $0.mid) })
    }

    /// The subscribe PeerConnection's offer and the track each mid is for. Sections for a live track of someone
    /// else are answered `sendonly` with that track; the rest `inactive`. Returns the tracks refused for want of
    /// their codec in the offer.
    public func subscribe(room: String, participant pid: String, offer text: String, tracks wanted: [String: String]) throws(RoomMediaError)
        -> (answer: String, refused: [String]) {
        let offer: RemoteOffer
        do { offer = try RemoteOffer(parsing: text) } catch { throw .badOffer(error.description) }
        let (existingSubscriber, producers) = lock.withLock { () -> (Subscriber?, [String: (owner: String, producer: Producer)]) in
            var all: [String: (String, Producer)] = [:]
            for (owner, m) in rooms[room] ?? [:] where owner != pid {
                for t in m.tracks { all[t.id] = (owner, t.producer) }
            }
            return (rooms[room]?[pid]?.subscriber, all)
        }
        let subscriber: Subscriber
        var opened: WebRTCTransport?
        var current = existingSubscriber
        if let old = current, old.transport.peerFingerprint != offer.fingerprint {
            // A new PeerConnection for the same seat (a reloaded page): the old one ends.
            lock.withLock { if rooms[room]?[pid]?.subscriber === old { rooms[room]?[pid]?.subscriber = nil } }
            old.detachAll()
            old.transport.close()
            current = nil
        }
        if let current {
            if offer.ufrag != current.remoteUfrag {
                try restartICE(current.session, remoteUfrag: offer.ufrag)
                current.remoteUfrag = offer.ufrag
            }
            subscriber = current
        } else {
            let (transport, session): (WebRTCTransport, MediaSession)
            do throws(WebRTCError) { (transport, session) = try registry.open(offer, use: .rooms) } catch { throw .unavailable(error.description) }
            subscriber = Subscriber(transport: transport, session: session, remoteUfrag: offer.ufrag)
            opened = transport
        }
        var accepted: [AnswerSection] = []
        var refused: [String] = []
        var plan: [(mid: String, slot: Subscriber.Slot?)] = []
        for s in offer.sections {
            let track = wanted[s.mid]
            let old = subscriber.slot(s.mid)
            if s.direction.receives, let track, let (owner, producer) = producers[track] {
                if let old, old.track == track, old.consumer.producer === producer {
                    accepted.append(sendingSection(s, codec: old.codec, consumer: old.consumer, owner: owner, track: track))
                    continue
                }
                if var codec = CodecPolicy.playCodec(matching: producer.codec, in: s) {
                    if !registry.options.nack { codec.feedback.removeAll { $0 == "nack" } }
                    let ssrc = UInt32.random(in: 2...UInt32.max)
                    var rtx: (payloadType: UInt8, ssrc: UInt32)?
                    if let pt = codec.rtxPayloadType, codec.feedback.contains("nack") {
                        var r: UInt32
                        repeat { r = UInt32.random(in: 2...UInt32.max) } while r == ssrc
                        rtx = (pt, r)
                    }
                    let consumer = Consumer(producer: producer, payloadType: codec.payloadType, ssrc: ssrc, rtx: rtx,
                                            transport: subscriber.transport)
                    accepted.append(sendingSection(s, codec: codec, consumer: consumer, owner: owner, track: track))
                    plan.append((s.mid, Subscriber.Slot(track: track, consumer: consumer, codec: codec)))
                    continue
                }
                refused.append(track)
            }
            if let inactive = Self.inactive(s) { accepted.append(inactive) }
            if old != nil { plan.append((s.mid, nil)) }
        }
        let offered = Set(offer.sections.map(\.mid))
        for (mid, _) in subscriber.allSlots where !offered.contains(mid) { plan.append((mid, nil)) }
        let answer = offer.answer(accepted, credentials: subscriber.session.credentials, fingerprint: registry.certificate.fingerprint,
                                  candidates: registry.port.candidates).text
        if let transport = opened {
            let stored = lock.withLock { () -> Bool in
                guard rooms[room]?[pid]?.subscriber == nil else { return false }
                rooms[room, default: [:]][pid, default: Member()].subscriber = subscriber
                return true
            }
            guard stored else {
                transport.close()
                throw .unsupported("subscribe again only after the first answer")
            }
            transport.onConnected { [weak subscriber] in subscriber?.connect() }
            transport.onPacket { [weak subscriber] packet, isRTCP in if isRTCP { subscriber?.rtcp(packet) } }
            transport.onClose { [weak self, weak subscriber] _ in
                guard let subscriber else { return }
                subscriber.detachAll()
                self?.lock.withLock {
                    if self?.rooms[room]?[pid]?.subscriber === subscriber { self?.rooms[room]?[pid]?.subscriber = nil }
                }
            }
        }
        for (mid, slot) in plan { subscriber.set(mid, slot) }
        return (answer, refused)
    }

    /// A re-offer with a new ufrag: the transport's ICE session takes new credentials and keeps its DTLS and SRTP.
    func restartICE(_ session: MediaSession, remoteUfrag: String) throws(RoomMediaError) {
        guard session.restart(remoteUfrag: remoteUfrag) != nil else { throw .unavailable("the transport closed during its ICE restart") }
        lock.withLock { restartCount += 1 }
    }

    /// A section answered `inactive`, in the first codec offered (nil when none was).
    static func inactive(_ s: RemoteOffer.Section) -> AnswerSection? {
        guard let codec = s.codecs.first else { return nil }
        var inactive = AnswerSection(mid: s.mid, kind: s.kind, codec: codec, direction: .inactive, rtcpRsize: s.rtcpRsize)
        inactive.feedback = []
        return inactive
    }

    func sendingSection(_ s: RemoteOffer.Section, codec: RTPCodec, consumer: Consumer, owner: String, track: String) -> AnswerSection {
        AnswerSection(mid: s.mid, kind: s.kind, codec: codec, direction: .sendonly,
                      sending: (ssrc: consumer.ssrc, rtxSSRC: consumer.rtx?.ssrc, cname: owner, stream: owner, track: track),
                      rtcpRsize: s.rtcpRsize)
    }

    /// `subscription`: forwarding of one track to one participant on or off.
    public func setSubscription(room: String, participant pid: String, track: String, enabled: Bool, size: (Int, Int)? = nil) -> Bool {
        guard let subscriber = lock.withLock({ rooms[room]?[pid]?.subscriber }) else { return false }
        return subscriber.setEnabled(track: track, enabled, size: size)
    }

    /// The participant left: its tracks leave every subscriber, its transports close.
    public func remove(room: String, participant pid: String) {
        let (member, others) = lock.withLock { () -> (Member?, [Subscriber]) in
            let m = rooms[room]?.removeValue(forKey: pid)
            if rooms[room]?.isEmpty == true { rooms[room] = nil }
            return (m, rooms[room]?.values.compactMap(\.subscriber) ?? [])
        }
        guard let member else { return }
        let producers = member.tracks.map(\.producer)
        for s in others { s.drop(producers: producers) }
        member.subscriber?.detachAll()
        member.subscriber?.transport.close()
        member.publisher?.close()
        member.publisher?.publisher.close()
        reconcileHub(room: room, participant: pid)
    }

    /// ``RouterRegistry/publishPlan(_:videoCodec:)`` in the room's video codec, its errors in the room's terms.
    func publishPlan(_ offer: RemoteOffer) throws(RoomMediaError)
        -> (accepted: [AnswerSection], tracks: [(RemoteOffer.Section, RTPCodec)], transportCCID: UInt8?) {
        do throws(WebRTCError) {
            return try registry.publishPlan(offer, videoCodec: videoCodec)
        } catch {
            if case .negotiation(.noCommonCodec) = error { throw .codec("\(error.description); this room's video codec is \(videoCodec)") }
            throw .badOffer(error.description)
        }
    }

    /// A re-offer on the same publish PeerConnection. Unchanged tracks are answered as before; a new sending section
    /// (a screen share) becomes a new track on the same transport; a section that stopped sending (`inactive`) ends
    /// its track, which leaves every subscriber. A new ufrag is an ICE restart.
    func republish(room: String, participant pid: String, offer: RemoteOffer, existing: Member, router: Router, session: MediaSession,
                   maxTracks: Int) throws(RoomMediaError) -> (answer: String, tracks: [PublishedTrack]) {
        let sending = offer.sections.filter(\.direction.sends)
        guard sending.count <= maxTracks else { throw .tooManyTracks(offered: sending.count, limit: maxTracks) }
        let known = Dictionary(existing.publishAnswer.map { ($0.mid, $0) }, uniquingKeysWith: { a, _ in a })
        var answer: [AnswerSection] = []
        var added: [(RemoteOffer.Section, RTPCodec)] = []
        for s in offer.sections {
            if s.direction.sends, existing.tracks.contains(where: { $0.mid == s.mid }), let a = known[s.mid] {
                answer.append(a)
            } else if s.direction.sends {
                var one = offer
                one.sections = [s]
                let plan = try publishPlan(one)
                answer += plan.accepted
                added += plan.tracks
            } else if var a = known[s.mid] {
                a.direction = .inactive
                answer.append(a)
            } else if let inactive = Self.inactive(s) {
                answer.append(inactive)
            }
        }
        if offer.ufrag != existing.publishUfrag {
            try restartICE(session, remoteUfrag: offer.ufrag)
            lock.withLock { if rooms[room]?[pid]?.publishSession === session { rooms[room]?[pid]?.publishUfrag = offer.ufrag } }
        }
        let producers = registry.makeProducers(added, publisher: router.publisher)
        let generation = existing.publishGeneration
        let newTracks = zip(added, producers).map { (t, p) in
            (id: generation <= 1 ? "\(pid)-\(t.0.mid)" : "\(pid)-\(t.0.mid)-\(generation)", mid: t.0.mid, producer: p)
        }
        let stopped = existing.tracks.filter { t in !sending.contains { $0.mid == t.mid } }
        router.add(producers)
        router.remove(stopped.map(\.producer))
        let (tracks, others) = lock.withLock { () -> ([(id: String, mid: String, producer: Producer)], [Subscriber]) in
            guard rooms[room]?[pid]?.publisher === router else { return (existing.tracks, []) }
            let tracks = existing.tracks.filter { t in !stopped.contains { $0.mid == t.mid } } + newTracks
            rooms[room]?[pid]?.tracks = tracks
            rooms[room]?[pid]?.publishAnswer = answer
            return (tracks, rooms[room]?.values.compactMap(\.subscriber) ?? [])
        }
        let gone = stopped.map(\.producer)
        if !gone.isEmpty { for s in others { s.drop(producers: gone) } }
        if !added.isEmpty || !stopped.isEmpty {
            reconcileHub(room: room, participant: pid)
            registry.logger.info("room publish renegotiated", metadata: ["room": "\(room)", "participant": "\(pid)",
                                                                        "added": "\(newTracks.map(\.id))", "ended": "\(stopped.map(\.id))"])
        }
        return (offer.answer(answer, credentials: session.credentials, fingerprint: registry.certificate.fingerprint,
                             candidates: registry.port.candidates).text,
                tracks.map { PublishedTrack(id: $0.id, kind: $0.producer.kind, mid: $0.mid) })
    }

    /// Ends a publish transport the participant replaced: its tracks leave every subscriber.
    func dropPublisher(room: String, participant pid: String, router: Router) {
        let (tracks, others) = detach(room: room, participant: pid, router: router)
        for s in others { s.drop(producers: tracks) }
        router.close()
        router.publisher.close()
        reconcileHub(room: room, participant: pid)
        registry.logger.info("room publisher replaced", metadata: ["room": "\(room)", "participant": "\(pid)"])
    }

    /// The participant's publish transport is no longer `router`'s: its tracks, and the room's subscribers they
    /// must leave. Nothing when the participant has another publisher by now.
    func detach(room: String, participant pid: String, router: Router) -> (tracks: [Producer], others: [Subscriber]) {
        lock.withLock {
            guard let m = rooms[room]?[pid], m.publisher === router else { return ([], []) }
            rooms[room]?[pid]?.publisher = nil
            rooms[room]?[pid]?.publishSession = nil
            rooms[room]?[pid]?.tracks = []
            return (m.tracks.map(\.producer), rooms[room]?.values.compactMap(\.subscriber) ?? [])
        }
    }

    func publishTransportClosed(room: String, participant pid: String, router: Router, reason: String) {
        let (tracks, others) = detach(room: room, participant: pid, router: router)
        router.close()
        guard !tracks.isEmpty else { return }
        reconcileHub(room: room, participant: pid)
        registry.logger.info("room publisher gone", metadata: ["room": "\(room)", "participant": "\(pid)", "reason": "\(reason)"])
        for s in others { s.drop(producers: tracks) }
        publisherClosed(room, pid)
    }

    // MARK: - Figures

    public struct TrackFigures: Sendable, Codable, Equatable {
        public var id: String
        public var kind: String
        public var codec: String
        /// Media packets; padding-only packets (bandwidth probes) apart.
        public var packetsReceived: Int
        public var paddingReceived: Int
        public var packetsLost: Int64
        public var bitrate: Int
        public var subscribers: Int
    }

    public struct SubscriptionFigures: Sendable, Codable, Equatable {
        public var track: String
        public var mid: String
        public var enabled: Bool
        public var packetsSent: Int
        public var retransmitted: Int
    }

    public struct ParticipantFigures: Sendable, Codable, Equatable {
        public var publishing: [TrackFigures]
        public var receiving: [SubscriptionFigures]
    }

    /// Per participant of `room`: what it sends us and what we send it.
    public func figures(room: String) -> [String: ParticipantFigures] {
        let members = lock.withLock { rooms[room] ?? [:] }
        return members.mapValues { m in
            ParticipantFigures(
                publishing: m.tracks.map { t in
                    let f = t.producer.receiveFigures
                    return TrackFigures(id: t.id, kind: t.producer.kind.rawValue, codec: t.producer.codec.rtpmap, packetsReceived: f.packets,
                                        paddingReceived: f.padding, packetsLost: f.lost, bitrate: f.bitrate, subscribers: t.producer.consumerCount)
                },
                receiving: (m.subscriber?.allSlots ?? []).map { mid, s in
                    SubscriptionFigures(track: s.track, mid: mid, enabled: s.enabled, packetsSent: s.consumer.sent,
                                        retransmitted: s.consumer.retransmitted)
                }.sorted { $0.track < $1.track })
        }
    }

    /// Each room's audio levels since the last call, per participant (its loudest audio track): the mean level
    /// (RFC 6464: 0 is 0 dBov, 127 silence). Participants without audio packets meanwhile are left out.
    public func takeAudioLevels() -> [String: [String: Double]] {
        let all = lock.withLock { rooms.mapValues { $0.mapValues { m in m.tracks.map(\.producer).filter { $0.kind == .audio } } } }
        var out: [String: [String: Double]] = [:]
        for (room, members) in all {
            for (pid, producers) in members {
                let levels = producers.compactMap { $0.takeAudioLevel()?.level }
                if let loudest = levels.min() { out[room, default: [:]][pid] = loudest }
            }
        }
        return out
    }

    /// Tracks published in every room (for the metrics).
    public var trackCount: Int { lock.withLock { rooms.values.reduce(0) { $0 + $1.values.reduce(0) { $0 + $1.tracks.count } } } }
}
