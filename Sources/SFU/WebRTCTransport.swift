import DTLS
import ICE
import Logging
import NIOConcurrencyHelpers
import NIOCore
import RTP
import SRTP

/// One WebRTC transport on the media port: the ICE session below, DTLS on top of it (LiveSwarm is the DTLS
/// server, `a=setup:passive`), and once the handshake is done, SRTP contexts keyed from it (RFC 5764).
///
/// It is the media port's ``MediaSessionHandler`` for its session: DTLS datagrams drive the handshake (with the
/// retransmission timer on `eventLoop`), SRTP and SRTCP packets are unprotected, counted, and handed to
/// ``onPacket``; packets that fail authentication are counted and dropped. The media port may call it from
/// the UDP socket's event loop and from ICE-TCP connections' loops, so its state sits behind a lock; DTLS datagrams
/// are handled on the transport's own `eventLoop` (the handshakes of many viewers spread over the loops).
public final class WebRTCTransport: MediaSessionHandler, @unchecked Sendable {
    public struct Stats: Sendable, Equatable, Codable {
        /// `new` (no DTLS yet), `connecting`, `connected`, `failed`, `closed`.
        public var dtlsState = "new"
        public var dtlsVersion: String?
        public var dtlsCipher: String?
        public var srtpProfile: String?
        public var failure: String?
        public var dtlsDatagramsIn = 0
        public var dtlsDatagramsOut = 0
        /// SRTP and SRTCP packets that authenticated.
        public var rtpPacketsIn = 0
        public var rtcpPacketsIn = 0
        /// Packets dropped: authentication or replay failures, or SRTP before the handshake finished.
        public var srtpDropped = 0
    }

    /// A plain RTP or RTCP packet from the peer, after SRTP. Called with the transport's lock released, on the
    /// event loop the packet came in on.
    public typealias PacketHandler = @Sendable (_ packet: [UInt8], _ isRTCP: Bool) -> Void

    public let certificate: Certificate
    public let peerFingerprint: Fingerprint
    let eventLoop: any EventLoop
    let logger: Logger
    let lock = NIOLock()
    var dtls: DTLSSession
    var inbound: SRTPContext?
    var outbound: SRTPContext?
    var stats = Stats()
    var timer: Scheduled<Void>?
    /// BYE and close_notify went (``farewell()``).
    var saidFarewell = false
    var session: MediaSession?
    var packetHandler: PacketHandler?
    var closedHandler: (@Sendable (String) -> Void)?
    var connectedHandler: (@Sendable () -> Void)?

    public init(certificate: Certificate, peerFingerprint: Fingerprint, eventLoop: any EventLoop, logger: Logger) throws(DTLSError) {
        self.certificate = certificate
        self.peerFingerprint = peerFingerprint
        self.eventLoop = eventLoop
        self.logger = logger
        self.dtls = try DTLSSession(certificate: certificate, role: .server, peerFingerprint: peerFingerprint)
    }

    /// The ICE session this transport runs on (from ``MediaPort/openSession(remoteUfrag:handler:use:)``).
    public func attach(_ session: MediaSession) {
        lock.withLock { self.session = session }
    }

    public func onPacket(_ handler: @escaping PacketHandler) { lock.withLock { packetHandler = handler } }
    public func onClose(_ handler: @escaping @Sendable (String) -> Void) { lock.withLock { closedHandler = handler } }
    /// Called once, when DTLS is connected and SRTP keyed (on the transport's event loop).
    public func onConnected(_ handler: @escaping @Sendable () -> Void) { lock.withLock { connectedHandler = handler } }

    public var currentStats: Stats { lock.withLock { stats } }

    /// Protects and sends an RTP (or RTCP) packet to the peer. False before the handshake is done.
    @discardableResult
    public func send(_ packet: [UInt8], isRTCP: Bool) -> Bool {
        let (target, out): (MediaSession?, ByteBuffer?) = lock.withLock {
            guard let outbound, let session else { return (nil, nil) }
            return (session, Self.protect(packet, isRTCP: isRTCP, with: outbound))
        }
        guard let target, let out else { return false }
        return target.send(out)
    }

    /// Protects RTP packets and sends them together (one hop to the socket's event loop, one flush).
    public func send(rtp packets: [[UInt8]]) {
        let (target, out): (MediaSession?, [ByteBuffer]) = lock.withLock {
            guard let outbound, let session else { return (nil, []) }
            return (session, packets.compactMap { Self.protect($0, isRTCP: false, with: outbound) })
        }
        if let target, !out.isEmpty { target.send(batch: out) }
    }

    /// The packet copied once, into its datagram, and protected there; nil if SRTP refuses it.
    static func protect(_ packet: [UInt8], isRTCP: Bool, with outbound: SRTPContext) -> ByteBuffer? {
        let room = packet.count + SRTPContext.maximumTrailer
        var buffer = ByteBufferAllocator().buffer(capacity: room)
        let written = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: room) { out in
            out.copyBytes(from: packet)
            let p = out.baseAddress!.assumingMemoryBound(to: UInt8.self)
            let n = try? isRTCP ? outbound.protectRTCP(p, length: packet.count) : outbound.protectRTP(p, length: packet.count)
            return n ?? 0
        }
        return written > 0 ? buffer : nil
    }

    /// An RTP packet of `header` and `payload` protected into a datagram of its own, for ``send(datagrams:)``; nil
    /// before the handshake or for a header SRTP refuses.
    func protectRTP(header: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer) -> ByteBuffer? {
        lock.withLock { outbound.flatMap { Self.protect(header: header, payload: payload, with: $0) } }
    }

    /// The new packet of `header` and `payload` encrypted straight into its datagram; nil if SRTP refuses it.
    static func protect(header: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer,
                        with outbound: SRTPContext) -> ByteBuffer? {
        let size = header.count + payload.count + outbound.tagLength
        var buffer = ByteBufferAllocator().buffer(capacity: size)
        let written = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
            (try? outbound.protectRTP(header: header, payload: payload, into: out)) ?? 0
        }
        return written > 0 ? buffer : nil
    }

    /// Sends protected datagrams together (``MediaSession/send(batch:)``: one hop to the socket's event loop, one
    /// flush).
    func send(datagrams: [ByteBuffer]) {
        guard !datagrams.isEmpty, let session = lock.withLock({ self.session }) else { return }
        session.send(batch: datagrams)
    }

    /// The fan-out's send: an RTP packet of `header` (already in this viewer's numbering) and `payload` (the
    /// publisher's, shared by every viewer), encrypted straight into the datagram, which is queued unflushed: the
    /// caller flushes once after the fan-out (``MediaSession/flush()``). Returns the session to flush, nil if
    /// nothing was sent (before the handshake, or a header SRTP refuses).
    func sendUnflushed(header: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer) -> MediaSession? {
        let (target, out): (MediaSession?, ByteBuffer?) = lock.withLock {
            guard let outbound, let session else { return (nil, nil) }
            return (session, Self.protect(header: header, payload: payload, with: outbound))
        }
        guard let target, let out, target.sendUnflushed(out) else { return nil }
        return target
    }

    /// Ends the association: RTCP BYE and close_notify to the peer (``farewell()``), and the ICE session is closed.
    public func close() {
        sayFarewell()?.close()
    }

    /// The server is going: the peer hears it (``farewell()``) before the media port closes its sockets.
    public func mediaSessionShuttingDown(_ session: MediaSession) {
        sayFarewell()
    }

    /// Stops the DTLS timer and sends ``farewell()``'s datagrams (nothing the second time); returns the session.
    @discardableResult
    func sayFarewell() -> MediaSession? {
        let (datagrams, session) = lock.withLock { () -> ([ByteBuffer], MediaSession?) in
            timer?.cancel()
            timer = nil
            return (farewell(), self.session)
        }
        if !datagrams.isEmpty { session?.send(batch: datagrams) }
        return session
    }

    /// The last datagrams to the peer, once: an RTCP BYE for every SSRC this end sent RTP or RTCP as (RFC 3550
    /// 6.6; in a compound packet after an empty receiver report, 6.1), then DTLS close_notify, so that the peer
    /// ends the session at once instead of waiting out its consent or DTLS timeouts. Under the lock.
    func farewell() -> [ByteBuffer] {
        guard !saidFarewell else { return [] }
        saidFarewell = true
        var out: [ByteBuffer] = []
        if let outbound, let bye = Self.goodbye(ssrcs: outbound.sentSSRCs), let packet = Self.protect(bye, isRTCP: true, with: outbound) {
            out.append(packet)
        }
        return out + dtls.close().datagrams.map { ByteBuffer(bytes: $0) }
    }

    /// An empty receiver report and a BYE for `ssrcs` (31 at most in one BYE), nil when there are none.
    static func goodbye(ssrcs: [UInt32]) -> [UInt8]? {
        guard let first = ssrcs.first else { return nil }
        var out: [UInt8] = []
        RTCPPacket.receiverReport(ReceiverReport(ssrc: first)).write(to: &out)
        RTCPPacket.goodbye(Goodbye(ssrcs: ssrcs)).write(to: &out)
        return out
    }

    // MARK: - MediaSessionHandler

    public func mediaSession(_ session: MediaSession, received packet: ByteBuffer, kind: PacketKind, from: PeerAddress) {
        switch kind {
        case .dtls:
            // The handshake's work (ECDHE, the ECDSA signature, the client's certificate) runs on the transport's
            // own event loop, not the media socket's: a flash crowd's handshakes spread over the loops while the
            // socket's loop goes on forwarding media. Order holds: the client sends SRTP only after our last flight,
            // which leaves after this loop has keyed SRTP.
            guard eventLoop.inEventLoop else {
                eventLoop.execute { self.mediaSession(session, received: packet, kind: kind, from: from) }
                return
            }
            let (datagrams, data, connected) = lock.withLock { () -> ([[UInt8]], [[UInt8]], (@Sendable () -> Void)?) in
                stats.dtlsDatagramsIn += 1
                if stats.dtlsState == "new" { stats.dtlsState = "connecting" }
                let out = dtls.receive(Array(packet.readableBytesView))
                apply(out)
                if case .connected? = out.stateChanged, outbound != nil {
                    // Called once: a WHEP viewer's handler holds its consumers, which hold this transport.
                    defer { connectedHandler = nil }
                    return (out.datagrams, out.data, connectedHandler)
                }
                return (out.datagrams, out.data, nil)
            }
            for d in datagrams { session.send(ByteBuffer(bytes: d)) }
            connected?()
            // Application data (SCTP for DataChannels) is not handled yet.
            if !data.isEmpty { logger.trace("DTLS application data ignored", metadata: ["records": "\(data.count)"]) }
        case .rtp:
            var bytes = Array(packet.readableBytesView)
            let isRTCP = RTPPacket.isRTCP(bytes)
            let handler: PacketHandler? = lock.withLock {
                guard let inbound else {
                    stats.srtpDropped += 1
                    return nil
                }
                do {
                    if isRTCP { try inbound.unprotectRTCP(&bytes) } else { try inbound.unprotectRTP(&bytes) }
                } catch {
                    stats.srtpDropped += 1
                    return nil
                }
                if isRTCP { stats.rtcpPacketsIn += 1 } else { stats.rtpPacketsIn += 1 }
                return packetHandler
            }
            handler?(bytes, isRTCP)
        case .stun:
            break  // answered by the ICE agent, never handed here
        }
    }

    public func mediaSession(_ session: MediaSession, selected address: PeerAddress) {}

    public func mediaSessionClosed(_ session: MediaSession, reason: ICELiteAgent.CloseReason) {
        let handler = lock.withLock { () -> (@Sendable (String) -> Void)? in
            timer?.cancel()
            timer = nil
            if stats.dtlsState != "failed" { stats.dtlsState = "closed" }
            self.session = nil
            // No call follows: the handlers go, and with them any cycle through their captures (a viewer's
            // consumers hold this transport, and through their producer the publisher's packet history).
            defer { (closedHandler, packetHandler, connectedHandler) = (nil, nil, nil) }
            return closedHandler
        }
        handler?(reason.rawValue)
    }

    // MARK: - DTLS

    /// Takes one DTLS step's result: state change, SRTP keys, the retransmission timer. Under the lock.
    func apply(_ out: DTLSSession.Output) {
        stats.dtlsDatagramsOut += out.datagrams.count
        switch out.stateChanged {
        case .connected(let keys)?:
            do {
                inbound = try SRTPContext(profile: keys.profile, masterKey: keys.remote, direction: .inbound)
                outbound = try SRTPContext(profile: keys.profile, masterKey: keys.local, direction: .outbound)
                stats.dtlsState = "connected"
                stats.srtpProfile = keys.profile.description
                stats.dtlsVersion = dtls.version
                stats.dtlsCipher = dtls.cipher
                logger.info("DTLS connected", metadata: ["srtp": "\(keys.profile)", "cipher": "\(dtls.cipher)"])
            } catch {
                stats.dtlsState = "failed"
                stats.failure = "SRTP: \(error)"
            }
        case .failed(let why)?:
            stats.dtlsState = "failed"
            stats.failure = why.description
            logger.warning("DTLS failed", metadata: ["why": "\(why)"])
        case .closed?:
            stats.dtlsState = "closed"
        case .handshaking?, nil:
            break
        }
        timer?.cancel()
        timer = nil
        if let wait = dtls.timeout {
            // A millisecond late, so that OpenSSL's own clock agrees the timer has run out.
            timer = eventLoop.scheduleTask(in: TimeAmount(wait) + .milliseconds(1)) { [weak self] in
                self?.fireTimer()
            }
        }
    }

    func fireTimer() {
        let (datagrams, session) = lock.withLock { () -> ([[UInt8]], MediaSession?) in
            let out = dtls.handleTimeout()
            apply(out)
            return (out.datagrams, self.session)
        }
        for d in datagrams { session?.send(ByteBuffer(bytes: d)) }
    }
}
