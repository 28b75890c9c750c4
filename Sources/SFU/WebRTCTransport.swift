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
/// the UDP socket's event loop and from ICE-TCP connections' loops, so its state sits behind a lock.
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
    /// Called once, when DTLS is connected and SRTP keyed (on the event loop of the packet that finished it).
    public func onConnected(_ handler: @escaping @Sendable () -> Void) { lock.withLock { connectedHandler = handler } }

    public var currentStats: Stats { lock.withLock { stats } }

    /// Protects and sends an RTP (or RTCP) packet to the peer. False before the handshake is done.
    @discardableResult
    public func send(_ packet: [UInt8], isRTCP: Bool) -> Bool {
        let (session, out): (MediaSession?, [UInt8]?) = lock.withLock {
            guard let outbound else { return (nil, nil) }
            var p = packet
            do {
                if isRTCP { try outbound.protectRTCP(&p) } else { try outbound.protectRTP(&p) }
            } catch {
                return (nil, nil)
            }
            return (self.session, p)
        }
        guard let session, let out else { return false }
        return session.send(ByteBuffer(bytes: out))
    }

    /// Ends the association: close_notify to the peer, and the ICE session is closed.
    public func close() {
        let (datagrams, session) = lock.withLock { () -> ([[UInt8]], MediaSession?) in
            timer?.cancel()
            return (dtls.close().datagrams, self.session)
        }
        for d in datagrams { session?.send(ByteBuffer(bytes: d)) }
        session?.close()
    }

    // MARK: - MediaSessionHandler

    public func mediaSession(_ session: MediaSession, received packet: ByteBuffer, kind: PacketKind, from: PeerAddress) {
        switch kind {
        case .dtls:
            let (datagrams, data, connected) = lock.withLock { () -> ([[UInt8]], [[UInt8]], (@Sendable () -> Void)?) in
                stats.dtlsDatagramsIn += 1
                if stats.dtlsState == "new" { stats.dtlsState = "connecting" }
                let out = dtls.receive(Array(packet.readableBytesView))
                apply(out)
                if case .connected? = out.stateChanged, outbound != nil { return (out.datagrams, out.data, connectedHandler) }
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
