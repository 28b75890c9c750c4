import DTLS
import Foundation
import HTTPTypes
import Hummingbird
import ICE
import Logging
import NIOCore
import NIOPosix
import SDP
import SFU
import Synchronization

/// The media port's reachability check: a browser sends a WebRTC offer with one DataChannel and gets an
/// ICE-lite answer for the media port, so it can find out whether it reaches the port over UDP and over TCP
/// (ICE-TCP), by which pair, and whether DTLS-SRTP completes on it (a ``WebRTCTransport`` with the server's
/// certificate, the peer's fingerprint checked). SCTP does not exist yet, so the DataChannel never opens.
/// `web-demo/net-check` is its page.
///
/// - `POST /api/v1/rtc/probe?transport=udp|tcp|all` with the offer (`application/sdp`): 201 with the answer
///   and `Location: /api/v1/rtc/probe/ID`;
/// - `GET /api/v1/rtc/probe/ID`: the session as JSON (state, selected pair, checks, packets, why it closed);
/// - `DELETE /api/v1/rtc/probe/ID`: closes it.
///
/// A probe lives until its consent expires (the page closed or lost the network) or it is deleted; the last
/// ``RTCProbes/keptClosed`` closed ones stay readable.
final class RTCProbes: Sendable {
    static let maximumOpen = 64
    static let keptClosed = 64

    final class Probe: MediaSessionHandler, Sendable {
        struct Counts: Sendable {
            var dtls = 0
            var rtp = 0
            var selected: PeerAddress?
            var closed: ICELiteAgent.CloseReason?
            var closedAt: Date?
        }
        let created = Date()
        let transport: String
        let webRTC: WebRTCTransport
        let counts = Mutex(Counts())
        let onClose: @Sendable (ICELiteAgent.SessionID) -> Void
        init(transport: String, webRTC: WebRTCTransport, onClose: @escaping @Sendable (ICELiteAgent.SessionID) -> Void) {
            self.transport = transport
            self.webRTC = webRTC
            self.onClose = onClose
        }

        func mediaSession(_ session: MediaSession, received packet: ByteBuffer, kind: PacketKind, from: PeerAddress) {
            counts.withLock { kind == .dtls ? ($0.dtls += 1) : ($0.rtp += 1) }
            webRTC.mediaSession(session, received: packet, kind: kind, from: from)
        }

        func mediaSession(_ session: MediaSession, selected address: PeerAddress) {
            counts.withLock { $0.selected = address }
        }

        func mediaSessionClosed(_ session: MediaSession, reason: ICELiteAgent.CloseReason) {
            webRTC.mediaSessionClosed(session, reason: reason)
            counts.withLock {
                $0.closed = reason
                $0.closedAt = Date()
            }
            onClose(session.id)
        }
    }

    struct Entry: Sendable {
        let session: MediaSession
        let probe: Probe
        /// The agent's state when it closed (it forgets closed sessions).
        var last: ICELiteAgent.Session?
    }

    struct Status: ResponseEncodable {
        var id: String
        var transport: String
        var state: String
        var closeReason: String?
        var selected: String?
        var validated: [String]
        var checks: Int
        var lastCheckMsAgo: Int?
        var dtlsPackets: Int
        var rtpPackets: Int
        var ageMs: Int
        var dtls: WebRTCTransport.Stats
    }

    let port: MediaPort
    let certificate: Certificate
    let logger: Logger
    let entries = Mutex<(open: [ICELiteAgent.SessionID: Entry], closed: [(ICELiteAgent.SessionID, Entry)])>(([:], []))

    init(port: MediaPort, certificate: Certificate, logger: Logger) {
        self.port = port
        self.certificate = certificate
        self.logger = logger
    }

    func add(to router: Hummingbird.Router<HTTPContext>) {
        router.post("/api/v1/rtc/probe") { request, context in
            let body = try await request.body.collect(upTo: 256 * 1024)
            return try self.open(offer: String(buffer: body), transport: request.uri.queryParameters["transport"].map(String.init))
        }
        router.get("/api/v1/rtc/probe/:id") { _, context in
            try self.status(context.parameters.require("id"))
        }
        router.delete("/api/v1/rtc/probe/:id") { _, context in
            let id = try context.parameters.require("id")
            guard let n = UInt64(id), let e = self.entries.withLock({ $0.open[ICELiteAgent.SessionID(rawValue: n)] }) else {
                throw HTTPError(.notFound, message: "no open probe \(id)")
            }
            e.session.close()
            return Response(status: .noContent)
        }
    }

    func open(offer text: String, transport: String?) throws -> Response {
        let want = transport ?? "all"
        guard ["udp", "tcp", "all"].contains(want) else {
            throw HTTPError(.badRequest, message: "transport must be udp, tcp or all")
        }
        let offer: SessionDescription
        do {
            offer = try SessionDescription(parsing: text)
        } catch {
            throw HTTPError(.badRequest, message: "offer: \(error)")
        }
        let remote: (ufrag: String, password: String)
        let fingerprint: Fingerprint
        do {
            remote = try ICEAnswer.remoteCredentials(offer)
            fingerprint = try ICEAnswer.remoteFingerprint(offer)
        } catch {
            throw HTTPError(.badRequest, message: "offer: \(error)")
        }
        let candidates = port.candidates.filter { want == "all" || ($0.transport == .udp) == (want == "udp") }
        guard !candidates.isEmpty else {
            throw HTTPError(.serviceUnavailable, message: "the media port has no \(want == "all" ? "" : want + " ")candidate")
        }
        guard entries.withLock({ $0.open.count }) < Self.maximumOpen else {
            throw HTTPError(.tooManyRequests, message: "\(Self.maximumOpen) probes are open; try again in a minute")
        }
        let webRTC: WebRTCTransport
        do {
            webRTC = try WebRTCTransport(certificate: certificate, peerFingerprint: fingerprint,
                                         eventLoop: MultiThreadedEventLoopGroup.singleton.next(), logger: logger)
        } catch {
            throw HTTPError(.serviceUnavailable, message: "DTLS: \(error)")
        }
        let probe = Probe(transport: want, webRTC: webRTC) { [weak self] id in self?.closed(id) }
        let session: MediaSession
        do {
            session = try port.openSession(remoteUfrag: remote.ufrag, handler: probe)
        } catch {
            throw HTTPError(.serviceUnavailable, message: "\(error)")
        }
        webRTC.attach(session)
        let answer: SessionDescription
        do {
            answer = try ICEAnswer.dataChannelProbe(offer: offer, local: session.credentials, candidates: candidates,
                                                    fingerprint: certificate.fingerprint.sdpValue)
        } catch {
            session.close()
            throw HTTPError(.badRequest, message: "offer: \(error)")
        }
        entries.withLock { $0.open[session.id] = Entry(session: session, probe: probe) }
        logger.info("ICE probe opened", metadata: ["probe": "\(session.id)", "transport": "\(want)"])
        var headers = HTTPFields()
        headers[.contentType] = "application/sdp"
        headers[.location] = "/api/v1/rtc/probe/\(session.id)"
        return Response(status: .created, headers: headers, body: .init(byteBuffer: ByteBuffer(string: answer.text)))
    }

    func closed(_ id: ICELiteAgent.SessionID) {
        entries.withLock { e in
            guard let entry = e.open.removeValue(forKey: id) else { return }
            e.closed.append((id, entry))
            if e.closed.count > Self.keptClosed { e.closed.removeFirst(e.closed.count - Self.keptClosed) }
        }
    }

    func status(_ idText: String) throws -> Status {
        guard let n = UInt64(idText) else { throw HTTPError(.notFound, message: "no probe \(idText)") }
        let id = ICELiteAgent.SessionID(rawValue: n)
        let found: Entry? = entries.withLock { e in e.open[id] ?? e.closed.last { $0.0 == id }?.1 }
        guard let entry = found else { throw HTTPError(.notFound, message: "no probe \(idText)") }
        let agent = entry.session.state
        let counts = entry.probe.counts.withLock { $0 }
        let now = ContinuousClock.now
        return Status(
            id: idText, transport: entry.probe.transport,
            state: counts.closed != nil ? "closed" : (agent?.state.rawValue ?? "closed"),
            closeReason: counts.closed?.rawValue,
            selected: counts.selected.map { "\($0)" },
            validated: agent?.validated.map { "\($0)" } ?? [],
            checks: agent?.checks ?? 0,
            lastCheckMsAgo: agent?.lastCheck.map { Int((now - $0) / .milliseconds(1)) },
            dtlsPackets: counts.dtls, rtpPackets: counts.rtp,
            ageMs: Int(Date().timeIntervalSince(entry.probe.created) * 1000),
            dtls: entry.probe.webRTC.currentStats)
    }
}

/// Building ICE-lite answers (JSEP, RFC 8829) for the media port.
enum ICEAnswer {
    enum Failure: Error, CustomStringConvertible {
        case missingICECredentials
        case invalidICECredentials
        case noDataChannel
        case missingFingerprint
        case passiveOffer
        var description: String {
            switch self {
            case .missingFingerprint: "no a=fingerprint:sha-256 (RFC 8122) to check the peer's DTLS certificate against"
            case .passiveOffer: "a=setup:passive in an offer is not supported: LiveSwarm is the DTLS server (offer actpass)"
            case .missingICECredentials: "no a=ice-ufrag / a=ice-pwd"
            case .invalidICECredentials: "a=ice-ufrag or a=ice-pwd is not well formed (RFC 8839 5.4)"
            case .noDataChannel: "no DataChannel m-section (m=application ... UDP/DTLS/SCTP webrtc-datachannel)"
            }
        }
    }

    /// The peer's ufrag and password, from its first m-section or the session level.
    static func remoteCredentials(_ offer: SessionDescription) throws(Failure) -> (ufrag: String, password: String) {
        let first = offer.media.first
        guard let ufrag = first?.attribute("ice-ufrag") ?? offer.attribute("ice-ufrag"),
              let password = first?.attribute("ice-pwd") ?? offer.attribute("ice-pwd") else {
            throw .missingICECredentials
        }
        guard ICECredentials.isValid(ufrag: ufrag), ICECredentials.isValid(password: password) else {
            throw .invalidICECredentials
        }
        return (ufrag, password)
    }

    /// The peer's SHA-256 certificate fingerprint, from its first m-section or the session level; the offer must
    /// let us be the DTLS server (`actpass` or `active`).
    static func remoteFingerprint(_ offer: SessionDescription) throws(Failure) -> Fingerprint {
        let first = offer.media.first
        let values = (first?.attributes("fingerprint") ?? []) + offer.session.compactMap { l -> String? in
            guard let a = l.attribute, a.name == "fingerprint" else { return nil }
            return a.value.map(String.init)
        }
        guard let fingerprint = values.lazy.compactMap(Fingerprint.init(sdp:)).first else { throw .missingFingerprint }
        if (first?.attribute("setup") ?? offer.attribute("setup")) == "passive" { throw .passiveOffer }
        return fingerprint
    }

    /// The answer to an offer with a DataChannel: that m-section accepted on the media port's candidates, every
    /// other one rejected (port 0).
    static func dataChannelProbe(offer: SessionDescription, local: ICECredentials, candidates: [ICECandidate],
                                 fingerprint: String) throws(Failure) -> SessionDescription {
        guard let accepted = offer.media.firstIndex(where: { $0.kind == "application" && $0.proto.hasSuffix("DTLS/SCTP") }) else {
            throw .noDataChannel
        }
        let mid = offer.media[accepted].attribute("mid") ?? "0"
        var session: [SessionDescription.Line] = [
            .init("v", "0"),
            .init("o", "- \(UInt64.random(in: 1...(1 << 62))) 2 IN IP4 127.0.0.1"),
            .init("s", "-"),
            .init("t", "0 0"),
            .init("a", "group:BUNDLE \(mid)"),
            .init("a", "ice-lite"),
        ]
        if offer.attribute("extmap-allow-mixed") != nil { session.append(.init("a", "extmap-allow-mixed")) }
        var media: [SessionDescription.MediaDescription] = []
        for (i, m) in offer.media.enumerated() {
            let mline = m.attribute("mid").map { [SessionDescription.Line("a", "mid:\($0)")] } ?? []
            guard i == accepted else {
                media.append(.init(kind: m.kind, port: 0, proto: m.proto, formats: m.formats,
                                   lines: [.init("c", "IN IP4 0.0.0.0")] + mline + [.init("a", "inactive")]))
                continue
            }
            var lines: [SessionDescription.Line] = [.init("c", "IN IP4 0.0.0.0")] + mline + [
                .init("a", "ice-ufrag:\(local.ufrag)"),
                .init("a", "ice-pwd:\(local.password)"),
                .init("a", "fingerprint:\(fingerprint)"),
                .init("a", "setup:passive"),
                .init("a", "sctp-port:5000"),
                .init("a", "max-message-size:262144"),
            ]
            for c in candidates { lines.append(.init("a", "candidate:\(c)")) }
            lines.append(.init("a", "end-of-candidates"))
            media.append(.init(kind: m.kind, port: 9, proto: m.proto, formats: m.formats, lines: lines))
        }
        return SessionDescription(session: session, media: media)
    }
}
