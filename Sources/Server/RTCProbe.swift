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
import Locks

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
        /// What the agent forgets when the session closes.
        struct Counts: Sendable {
            var selected: PeerAddress?
            var closed: ICELiteAgent.CloseReason?
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
            webRTC.mediaSession(session, received: packet, kind: kind, from: from)
        }

        func mediaSession(_ session: MediaSession, selected address: PeerAddress) {
            counts.withLock { $0.selected = address }
        }

        func mediaSessionClosed(_ session: MediaSession, reason: ICELiteAgent.CloseReason) {
            webRTC.mediaSessionClosed(session, reason: reason)
            counts.withLock { $0.closed = reason }
            onClose(session.id)
        }
    }

    struct Entry: Sendable {
        let session: MediaSession
        let probe: Probe
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
        let remote: TransportParameters
        do {
            remote = try TransportParameters(offer)
        } catch {
            throw HTTPError(.badRequest, message: "offer: \(error)")
        }
        let fingerprint = remote.fingerprint
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
            session = try port.openSession(remoteUfrag: remote.ufrag, handler: probe, use: .probe)
        } catch {
            throw HTTPError(.serviceUnavailable, message: "\(error)")
        }
        webRTC.attach(session)
        let answer: SessionDescription
        do {
            answer = try TransportParameters.dataChannelAnswer(offer: offer, credentials: session.credentials,
                                                               fingerprint: certificate.fingerprint, candidates: candidates)
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
        let dtls = entry.probe.webRTC.currentStats
        let now = ContinuousClock.now
        return Status(
            id: idText, transport: entry.probe.transport,
            state: counts.closed != nil ? "closed" : (agent?.state.rawValue ?? "closed"),
            closeReason: counts.closed?.rawValue,
            // The agent's own pair while it is open (its state and pair change together; the handler hears of a
            // nomination just after, and a read in between saw "connected" with no pair); the last one once closed.
            selected: (agent?.selected ?? counts.selected).map { "\($0)" },
            validated: agent?.validated.map { "\($0)" } ?? [],
            checks: agent?.checks ?? 0,
            lastCheckMsAgo: agent?.lastCheck.map { Int((now - $0) / .milliseconds(1)) },
            // Every DTLS and RTP/RTCP packet the port delivered went to the transport, which counts them.
            dtlsPackets: dtls.dtlsDatagramsIn, rtpPackets: dtls.rtpPacketsIn + dtls.rtcpPacketsIn + dtls.srtpDropped,
            ageMs: Int(Date().timeIntervalSince(entry.probe.created) * 1000),
            dtls: dtls)
    }
}
