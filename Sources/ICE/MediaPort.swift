import ListenerGuard
import Logging
import Metrics
import NIOCore
import NIOPosix
import ServiceLifecycle
import STUN
import Locks

/// What the first byte of a packet on the media port says it is (RFC 7983 section 7).
public enum PacketKind: String, Sendable, Equatable {
    case stun, dtls, rtp

    /// 0-3 STUN, 20-63 DTLS, 128-191 RTP and RTCP; nil for anything else (ZRTP, TURN channels, garbage).
    @inline(__always)
    public static func classify(_ first: UInt8) -> PacketKind? {
        switch first {
        case 0...3: .stun
        case 20...63: .dtls
        case 128...191: .rtp
        default: nil
        }
    }
}

/// The owner of one session on the media port: the DTLS/SRTP transport plugs in here. Called on the event loop
/// of the socket the packet came in on (the UDP socket's, or the ICE-TCP connection's); must not block.
public protocol MediaSessionHandler: AnyObject, Sendable {
    /// A DTLS or RTP/RTCP packet from one of the session's validated addresses.
    func mediaSession(_ session: MediaSession, received packet: ByteBuffer, kind: PacketKind, from: PeerAddress)
    /// The peer nominated `address`: ``MediaSession/send(_:)`` now goes there.
    func mediaSession(_ session: MediaSession, selected address: PeerAddress)
    /// The session is gone (consent expired, never connected, or closed); no call follows.
    func mediaSessionClosed(_ session: MediaSession, reason: ICELiteAgent.CloseReason)
    /// The server is shutting down: the last packets to the peer (RTCP BYE, DTLS close_notify), sent with
    /// ``MediaSession/send(_:)`` now, before the port closes its sockets. ``mediaSessionClosed(_:reason:)`` follows.
    func mediaSessionShuttingDown(_ session: MediaSession)
}

extension MediaSessionHandler {
    public func mediaSessionShuttingDown(_ session: MediaSession) {}
}

/// One ICE session on the media port, as its owner sees it.
public final class MediaSession: Sendable {
    public let id: ICELiteAgent.SessionID
    let port: MediaPort
    let current: Mutex<ICECredentials>

    init(id: ICELiteAgent.SessionID, credentials: ICECredentials, port: MediaPort) {
        self.id = id
        self.current = Mutex(credentials)
        self.port = port
    }

    /// Our `a=ice-ufrag` / `a=ice-pwd` (new ones after ``restart(remoteUfrag:)``).
    public var credentials: ICECredentials { current.withLock { $0 } }

    /// An ICE restart: fresh local credentials for the answer, and the peer's new ufrag. The session, and the
    /// DTLS association and SRTP contexts on it, carry on; media keeps its current path until the peer nominates
    /// a new one. Nil when the session is closed.
    public func restart(remoteUfrag: String?) -> ICECredentials? { port.restart(self, remoteUfrag: remoteUfrag) }

    /// The agent's view: state, selected and validated addresses, last check. Nil once closed.
    public var state: ICELiteAgent.Session? { port.state.withLock { $0.agent.sessions[id] } }

    /// Sends a packet (DTLS, SRTP) to the selected address. False when nothing is selected yet or the session
    /// is closed.
    @discardableResult
    public func send(_ packet: ByteBuffer) -> Bool { port.send(packet, session: id, flush: true) }

    /// Sends without flushing the UDP socket: the datagram waits in its queue until ``flush()`` (or the end of the
    /// socket's current read), so that a fan-out's datagrams leave in one `sendmmsg` rather than one `sendmsg`
    /// each. An ICE-TCP path is flushed at once.
    @discardableResult
    public func sendUnflushed(_ packet: ByteBuffer) -> Bool { port.send(packet, session: id, flush: false) }

    /// Sends several packets together: on UDP one hop to the socket's event loop (when called from another) and one
    /// flush, so that they leave in one `sendmmsg`.
    @discardableResult
    public func send(batch packets: [ByteBuffer]) -> Bool { port.send(batch: packets, session: id) }

    /// Flushes the UDP socket, which every session on the port shares (``flushGroup``); inside the socket's read
    /// burst (a fan-out of a UDP publisher's packet, on the socket's event loop) the burst's end flushes instead,
    /// so that the burst's packets reach each viewer together (``DatagramWriter/flushUnlessHeld()``).
    public func flush() { port.flushUDP() }

    /// Sessions that share a UDP socket: one ``flush()`` sends what any of them queued.
    public var flushGroup: ObjectIdentifier { ObjectIdentifier(port) }

    /// Ends the session now; the handler hears `.closed`.
    public func close() { port.close(id, reason: .closed) }
}

/// The SFU's single media port (default UDP and TCP 8000). Every WebRTC session shares it:
///
/// - packets are sorted by their first byte (RFC 7983): STUN goes to the ``ICELiteAgent``, which answers
///   connectivity checks; DTLS and RTP/RTCP go to the session that validated their source address, and are
///   dropped without allocating when the source is unknown;
/// - replies go to the address each packet came from, whatever the candidate said (INTEROP.md);
/// - ICE-TCP (RFC 6544, passive side) on the same TCP port, framed as RFC 4571 (a 2-byte length before each
///   packet). A connection must open with a valid check within ``Configuration/tcpValidationTimeout`` and
///   may carry nothing else before one; it is closed otherwise;
/// - once a second, sessions whose consent expired are closed (RFC 7675).
public final class MediaPort: Service, Sendable {
    public struct Configuration: Sendable, Equatable {
        public var host = "0.0.0.0"
        /// 0 picks free ports (tests); UDP and TCP then differ.
        public var port = 8000
        /// Addresses written into ICE candidates; empty: the listen host when it is a specific address, else
        /// the machine's addresses (loopback and link-local left out).
        public var advertisedHosts: [String] = []
        public var tcp = true
        /// A frame's datagrams to one viewer leave as one segmented message (UDP GSO) where the kernel takes it
        /// (``DatagramWriter``); off, each datagram is its own system call entry.
        public var segmentation = true
        public var agent = ICELiteAgent.Configuration()
        public var tcpValidationTimeout: Duration = .seconds(10)
        public init() {}
    }

    public struct BoundPorts: Sendable, Equatable {
        public var udp: Int
        public var tcp: Int?
    }

    enum Path {
        case udp(SocketAddress)
        case tcp(any Channel)
    }

    /// What a session is for, the label of the bytes it is sent: `liveswarm_rtc_bytes_sent_total{use="whep"}`.
    public enum Use: String, Sendable, CaseIterable {
        /// A WHIP publisher (it is sent RTCP only).
        case whip
        /// A WHEP viewer, of a WHIP stream or of an RTMP stream.
        case whep
        /// A meeting room participant.
        case rooms
        /// `/api/v1/rtc-probe` (the network check page).
        case probe
    }

    struct Entry {
        let session: MediaSession
        let handler: any MediaSessionHandler
        let sent: Counter
        var path: Path?
    }

    struct State: ~Copyable {
        var agent: ICELiteAgent
        var entries: [ICELiteAgent.SessionID: Entry] = [:]
        var tcpChannels: [PeerAddress: any Channel] = [:]
        /// swift-nio's channel on the UDP socket reads; the writer sends (see ``DatagramWriter``).
        var udp: (any Channel)?
        var writer: DatagramWriter?
        var bound: BoundPorts?
        var hosts: [String] = []
    }

    let configuration: Configuration
    let logger: Logger
    let onBound: @Sendable (BoundPorts) -> Void
    let state: Mutex<State>
    let metrics: Metrics
    let switches = Mutex(0)

    /// Moves of a session's media to another address of its peer (a new nomination without a restart: a browser
    /// whose network changed), since start.
    public var pairSwitchCount: Int { switches.withLock { $0 } }

    struct Metrics: Sendable {
        let checks: Counter
        let errors: Counter
        let dropped: Counter
        let sessions: Gauge
        let restarts: Counter
        let switches: Counter
        let refused: Counter
        let segmented: Counter
        let sent: [Use: Counter]
        init(_ f: any MetricsFactory) {
            sent = Dictionary(uniqueKeysWithValues: Use.allCases.map {
                ($0, Counter(label: "liveswarm_rtc_bytes_sent_total", dimensions: [("use", $0.rawValue)], factory: f))
            })
            checks = Counter(label: "liveswarm_ice_checks_total", factory: f)
            errors = Counter(label: "liveswarm_ice_check_errors_total", factory: f)
            dropped = Counter(label: "liveswarm_rtc_dropped_packets_total", factory: f)
            sessions = Gauge(label: "liveswarm_ice_sessions", factory: f)
            restarts = Counter(label: "liveswarm_ice_restarts_total", factory: f)
            switches = Counter(label: "liveswarm_ice_pair_switches_total", factory: f)
            refused = Counter(label: "liveswarm_rtc_refused_datagrams_total", factory: f)
            segmented = Counter(label: "liveswarm_rtc_segmented_datagrams_total", factory: f)
        }
    }

    public init(configuration: Configuration, metricsFactory: any MetricsFactory, logger: Logger,
                onBound: @escaping @Sendable (BoundPorts) -> Void = { _ in }) {
        self.configuration = configuration
        self.logger = logger
        self.onBound = onBound
        self.state = Mutex(State(agent: ICELiteAgent(configuration: configuration.agent)))
        self.metrics = Metrics(metricsFactory)
    }

    // MARK: - Sessions

    public enum OpenError: Error, CustomStringConvertible {
        case notListening
        public var description: String { "the media port is not listening" }
    }

    /// Starts a session with fresh local credentials. `remoteUfrag` is the peer's `a=ice-ufrag`, when known.
    public func openSession(remoteUfrag: String?, handler: any MediaSessionHandler, use: Use) throws(OpenError) -> MediaSession {
        let now = ContinuousClock.now
        let session: MediaSession? = state.withLock { s in
            guard s.bound != nil else { return nil }
            while true {
                let credentials = ICECredentials.random()
                guard let id = s.agent.addSession(local: credentials, remoteUfrag: remoteUfrag, now: now) else { continue }
                let session = MediaSession(id: id, credentials: credentials, port: self)
                s.entries[id] = Entry(session: session, handler: handler, sent: metrics.sent[use]!)
                return session
            }
        }
        guard let session else { throw .notListening }
        recordSessionCount()
        logger.debug("ICE session opened", metadata: ["session": "\(session.id)", "ufrag": "\(session.credentials.ufrag)"])
        return session
    }

    func restart(_ session: MediaSession, remoteUfrag: String?) -> ICECredentials? {
        let now = ContinuousClock.now
        let credentials: ICECredentials? = state.withLock { s in
            guard s.entries[session.id] != nil else { return nil }
            while true {
                let credentials = ICECredentials.random()
                if s.agent.restart(session.id, local: credentials, remoteUfrag: remoteUfrag, now: now) {
                    session.current.withLock { $0 = credentials }
                    return credentials
                }
                guard s.agent.sessions[session.id] != nil else { return nil }
            }
        }
        if let credentials {
            metrics.restarts.increment()
            logger.info("ICE restart", metadata: ["session": "\(session.id)", "ufrag": "\(credentials.ufrag)"])
        }
        return credentials
    }

    /// Host candidates for an SDP answer (RFC 8839 5.1), UDP first; empty until the port is bound.
    public var candidates: [ICECandidate] {
        state.withLock { s in
            guard let bound = s.bound else { return [] }
            var out: [ICECandidate] = []
            for (i, host) in s.hosts.enumerated() {
                out.append(ICECandidate(foundation: "\(i + 1)", transport: .udp, priority: ICECandidate.priority(.udp, index: i),
                                        host: host, port: bound.udp))
            }
            if let tcp = bound.tcp {
                for (i, host) in s.hosts.enumerated() {
                    out.append(ICECandidate(foundation: "\(s.hosts.count + i + 1)", transport: .tcp,
                                            priority: ICECandidate.priority(.tcp, index: i), host: host, port: tcp))
                }
            }
            return out
        }
    }

    public var boundPorts: BoundPorts? { state.withLock { $0.bound } }

    /// Where a session's packets go now: its path, its byte counter and the UDP socket; nil before a path is
    /// selected and once the session is closed.
    func route(_ id: ICELiteAgent.SessionID) -> (path: Path, sent: Counter, udp: DatagramWriter?)? {
        state.withLock { s in s.entries[id].flatMap { entry in entry.path.map { ($0, entry.sent, s.writer) } } }
    }

    /// RFC 4571: the packet after its length, for an ICE-TCP connection.
    static func framed(_ packet: ByteBuffer, on channel: any Channel) -> ByteBuffer {
        var framed = channel.allocator.buffer(capacity: packet.readableBytes + 2)
        framed.writeInteger(UInt16(truncatingIfNeeded: packet.readableBytes))
        framed.writeImmutableBuffer(packet)
        return framed
    }

    func send(batch packets: [ByteBuffer], session id: ICELiteAgent.SessionID) -> Bool {
        guard let (path, sent, udp) = route(id) else { return false }
        switch path {
        case .udp(let address):
            guard let udp else { return false }
            sent.increment(by: packets.reduce(0) { $0 + $1.readableBytes })
            udp.send(packets.map { AddressedEnvelope(remoteAddress: address, data: $0) })
        case .tcp(let channel):
            sent.increment(by: packets.reduce(0) { $0 + $1.readableBytes })
            for p in packets { channel.write(Self.framed(p, on: channel), promise: nil) }
            channel.flush()
        }
        return true
    }

    func flushUDP() {
        state.withLock { $0.writer }?.flushUnlessHeld()
    }

    func send(_ packet: ByteBuffer, session id: ICELiteAgent.SessionID, flush: Bool) -> Bool {
        guard let (path, sent, udp) = route(id) else { return false }
        switch path {
        case .udp(let address):
            guard let udp else { return false }
            sent.increment(by: packet.readableBytes)
            if flush {
                udp.send([AddressedEnvelope(remoteAddress: address, data: packet)])
            } else {
                udp.enqueue(AddressedEnvelope(remoteAddress: address, data: packet), destination: id.rawValue)
            }
        case .tcp(let channel):
            sent.increment(by: packet.readableBytes)
            channel.writeAndFlush(Self.framed(packet, on: channel), promise: nil)
        }
        return true
    }

    func recordSessionCount() {
        metrics.sessions.record(state.withLock { $0.entries.count })
    }

    func close(_ id: ICELiteAgent.SessionID, reason: ICELiteAgent.CloseReason) {
        let entry: Entry? = state.withLock { s in
            s.agent.removeSession(id)
            return s.entries.removeValue(forKey: id)
        }
        guard let entry else { return }
        recordSessionCount()
        logger.info("ICE session closed", metadata: ["session": "\(id)", "reason": "\(reason.rawValue)"])
        entry.handler.mediaSessionClosed(entry.session, reason: reason)
    }

    // MARK: - Packets

    /// One STUN packet: the agent's verdict, the path of a newly selected address, and the events' handlers.
    func handleSTUN(_ buffer: ByteBuffer, from peer: PeerAddress, path: Path) -> [UInt8]? {
        let now = ContinuousClock.now
        var notify: [(Entry, PeerAddress)] = []
        let outcome: ICELiteAgent.Outcome = state.withLock { s in
            let outcome = s.agent.handleSTUN(Array(buffer.readableBytesView), from: peer, now: now)
            if case .reply(_, _, let events) = outcome {
                for case .selected(let id, let address, _) in events {
                    s.entries[id]?.path = path
                    if let e = s.entries[id] { notify.append((e, address)) }
                }
            }
            return outcome
        }
        switch outcome {
        case .reply(let bytes, let session, let events):
            if session != nil { metrics.checks.increment() } else { metrics.errors.increment() }
            for case .selected(_, _, let previous?) in events {
                metrics.switches.increment()
                switches.withLock { $0 += 1 }
                logger.info("ICE pair switched: the peer moved", metadata: ["from": "\(previous)"])
            }
            for (entry, address) in notify {
                logger.info("ICE pair selected", metadata: ["session": "\(entry.session.id)", "remote": "\(address)"])
                entry.handler.mediaSession(entry.session, selected: address)
            }
            return bytes
        case .drop(let why):
            metrics.dropped.increment()
            logger.trace("STUN packet dropped", metadata: ["from": "\(peer)", "why": "\(why)"])
            return nil
        }
    }

    /// DTLS or RTP from `peer`: to its session's handler, or dropped. No allocation on either way.
    ///
    /// Until the peer nominates a pair, replies go where its media comes from (a valid pair may carry media
    /// before nomination, RFC 8445 12.1): browsers start DTLS as soon as a check succeeds, and a ServerHello
    /// with nowhere to go would wait a whole retransmission timeout.
    @inline(__always)
    func deliver(_ buffer: ByteBuffer, kind: PacketKind, from peer: PeerAddress, path: @autoclosure () -> Path) -> Bool {
        let target: Entry? = state.withLock { s in
            guard let id = s.agent.session(for: peer), let entry = s.entries[id] else { return nil }
            if entry.path == nil { s.entries[id]?.path = path() }
            return entry
        }
        guard let target else {
            metrics.dropped.increment()
            return false
        }
        target.handler.mediaSession(target.session, received: buffer, kind: kind, from: peer)
        return true
    }

    func expire() {
        let now = ContinuousClock.now
        let closed: [(Entry, ICELiteAgent.CloseReason)] = state.withLock { s in
            s.agent.expire(now: now).compactMap { event in
                guard case .closedSession(let id, let reason) = event, let e = s.entries.removeValue(forKey: id) else { return nil }
                return (e, reason)
            }
        }
        guard !closed.isEmpty else { return }
        recordSessionCount()
        for (entry, reason) in closed {
            logger.info("ICE session closed", metadata: ["session": "\(entry.session.id)", "reason": "\(reason.rawValue)"])
            entry.handler.mediaSessionClosed(entry.session, reason: reason)
        }
    }

    func tcpConnected(_ channel: any Channel, peer: PeerAddress) {
        state.withLock { $0.tcpChannels[peer] = channel }
    }

    func tcpClosed(peer: PeerAddress) {
        state.withLock { s in
            s.tcpChannels[peer] = nil
            if let id = s.agent.session(for: peer), case .tcp? = s.entries[id]?.path, s.agent.sessions[id]?.selected == peer {
                s.entries[id]?.path = nil
            }
            s.agent.forget(peer)
        }
    }

    // MARK: - Service

    /// How many port numbers an ephemeral media port tries before giving up.
    static let ephemeralBindAttempts = 16

    public enum BindError: Error, CustomStringConvertible {
        case noFreePortPair(attempts: Int)
        public var description: String {
            switch self {
            case .noFreePortPair(let n):
                "no port number was free for both UDP and TCP after \(n) tries (set rtc.port, or rtc.tcp: false)"
            }
        }
    }

    /// Binds UDP, then (with ICE-TCP on) TCP on the same number. With port 0 the OS picks the UDP port, and that
    /// number can be taken for TCP (by a listener, or an outgoing connection's ephemeral port): then both are bound
    /// again on a new number, up to ``ephemeralBindAttempts`` times. A configured port is tried once.
    private func bindSockets(group: MultiThreadedEventLoopGroup) async throws
        -> (udp: any Channel, writer: DatagramWriter, tcp: (any Channel)?) {
        var attempt = 1
        while true {
            let (udp, writer) = try await bindUDP(group: group, port: configuration.port)
            guard configuration.tcp else { return (udp, writer, nil) }
            let tcpPort = configuration.port == 0 ? udp.localAddress?.port ?? 0 : configuration.port
            do {
                let tcp = try await ServerBootstrap(group: group)
                    .pausingAcceptsWhenExhausted(what: "ICE-TCP", logger: logger)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .childChannelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RFC4571Framer()))
                            try channel.pipeline.syncOperations.addHandler(TCPHandler(port: self))
                        }
                    }
                    .bind(host: configuration.host, port: tcpPort).get()
                return (udp, writer, tcp)
            } catch let error as IOError where error.errnoCode == EADDRINUSE && configuration.port == 0 {
                writer.close()
                try? await udp.close()
                guard attempt < Self.ephemeralBindAttempts else {
                    throw BindError.noFreePortPair(attempts: attempt)
                }
                logger.debug("media port: TCP \(tcpPort) is taken, trying another number", metadata: ["attempt": "\(attempt)"])
                attempt += 1
            } catch {
                writer.close()
                try? await udp.close()
                throw error
            }
        }
    }

    /// The UDP socket: bound here, read by a swift-nio channel, written by a ``DatagramWriter`` on a duplicate of
    /// it (so that a datagram the kernel refuses is dropped alone instead of closing the socket).
    private func bindUDP(group: MultiThreadedEventLoopGroup, port: Int) async throws -> (channel: any Channel, writer: DatagramWriter) {
        try await DatagramWriter.listen(group: group, host: configuration.host, port: port, receiveBuffer: 4 << 20, what: "media port",
                                        segmentation: configuration.segmentation ? metrics.segmented : nil, logger: logger,
                                        refused: metrics.refused) { writer in UDPHandler(port: self, writer: writer) }
    }

    public func run() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let (udp, writer, tcp) = try await bindSockets(group: group)
        let tcpChannel = tcp
        let bound = BoundPorts(udp: udp.localAddress?.port ?? 0, tcp: tcp?.localAddress?.port)
        let hosts = Self.advertisedHosts(configuration)
        state.withLock { s in
            s.udp = udp
            s.writer = writer
            s.bound = bound
            s.hosts = hosts
        }
        logger.info("media port listening (ICE-lite)", metadata: [
            "udp": "\(bound.udp)", "tcp": "\(bound.tcp.map(String.init) ?? "off")", "candidates": "\(hosts.joined(separator: ", "))",
        ])
        onBound(bound)
        let tick = min(.seconds(1), configuration.agent.consentTimeout / 4)
        let sweeper = udp.eventLoop.scheduleRepeatedTask(initialDelay: TimeAmount(tick), delay: TimeAmount(tick)) { _ in
            self.expire()
        }
        await withTaskCancellationOrGracefulShutdownHandler {
            try? await udp.closeFuture.get()
        } onCancelOrGracefulShutdown: {
            udp.close(promise: nil)
            tcpChannel?.close(promise: nil)
        }
        sweeper.cancel()
        // Every peer hears the server go (RTCP BYE, DTLS close_notify) while the sending descriptor and the ICE-TCP
        // connections are still open: the UDP channel closed above only stops reading.
        let saying = state.withLock { Array($0.entries.values) }
        for e in saying { e.handler.mediaSessionShuttingDown(e.session) }
        if !saying.isEmpty { logger.info("media port: goodbye said to every session", metadata: ["sessions": "\(saying.count)"]) }
        try? await tcpChannel?.close()
        let open = state.withLock { s -> [(any Channel)] in
            s.bound = nil
            s.udp = nil
            s.writer = nil
            return Array(s.tcpChannels.values)
        }
        for c in open { c.close(promise: nil) }
        let ids = state.withLock { Array($0.entries.keys) }
        for id in ids { close(id, reason: .closed) }
        writer.close()
    }

    static func advertisedHosts(_ c: Configuration) -> [String] {
        if !c.advertisedHosts.isEmpty { return c.advertisedHosts }
        if c.host != "0.0.0.0" && c.host != "::" { return [c.host] }
        var hosts: [String] = []
        for device in (try? System.enumerateDevices()) ?? [] {
            guard let address = device.address, let ip = address.ipAddress else { continue }
            switch address {
            case .v4:
                if !ip.hasPrefix("127.") { hosts.append(ip) }
            case .v6:
                if c.host == "::" && ip != "::1" && !ip.lowercased().hasPrefix("fe80") { hosts.append(ip) }
            default:
                continue
            }
        }
        return hosts.isEmpty ? ["127.0.0.1"] : Array(Set(hosts)).sorted()
    }

    // MARK: - Channel handlers

    final class UDPHandler: ChannelInboundHandler, Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        typealias OutboundOut = AddressedEnvelope<ByteBuffer>
        let port: MediaPort
        /// The socket's writer (the same as the port's state holds while it runs): STUN replies and read bursts'
        /// flushes go through it without the port's lock.
        let writer: DatagramWriter
        init(port: MediaPort, writer: DatagramWriter) { (self.port, self.writer) = (port, writer) }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            writer.hold()
            let envelope = unwrapInboundIn(data)
            guard let first = envelope.data.getInteger(at: envelope.data.readerIndex, as: UInt8.self),
                  let kind = PacketKind.classify(first),
                  let peer = PeerAddress(envelope.remoteAddress, transport: .udp) else {
                port.metrics.dropped.increment()
                return
            }
            if kind == .stun {
                guard let reply = port.handleSTUN(envelope.data, from: peer, path: .udp(envelope.remoteAddress)) else { return }
                writer.enqueue(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: context.channel.allocator.buffer(bytes: reply)))
            } else {
                _ = port.deliver(envelope.data, kind: kind, from: peer, path: .udp(envelope.remoteAddress))
            }
        }

        /// The replies of a read burst and its fan-outs' datagrams leave together (swift-nio ends every read,
        /// one that met an error too, with this call while the channel is open).
        func channelReadComplete(context: ChannelHandlerContext) { writer.release() }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // ICMP errors of earlier sends land here; the socket is fine.
            port.logger.trace("media port UDP error", metadata: ["error": "\(error)"])
        }
    }

    /// RFC 4571: each packet is preceded by its length, 16 bits big-endian.
    struct RFC4571Framer: ByteToMessageDecoder {
        typealias InboundOut = ByteBuffer
        mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
            guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
                  buffer.readableBytes >= 2 + Int(length) else { return .needMoreData }
            buffer.moveReaderIndex(forwardBy: 2)
            context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(length))!))
            return .continue
        }
    }

    final class TCPHandler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let port: MediaPort
        var peer: PeerAddress?
        var validated = false
        var timeout: Scheduled<Void>?
        init(port: MediaPort) { self.port = port }

        func channelActive(context: ChannelHandlerContext) {
            guard let remote = context.channel.remoteAddress, let peer = PeerAddress(remote, transport: .tcp) else {
                context.close(promise: nil)
                return
            }
            self.peer = peer
            port.tcpConnected(context.channel, peer: peer)
            let channel = context.channel
            let logger = port.logger
            timeout = context.eventLoop.scheduleTask(in: TimeAmount(port.configuration.tcpValidationTimeout)) {
                logger.debug("ICE-TCP connection closed: no valid check", metadata: ["remote": "\(peer)"])
                channel.close(promise: nil)
            }
            context.fireChannelActive()
        }

        func channelInactive(context: ChannelHandlerContext) {
            timeout?.cancel()
            if let peer { port.tcpClosed(peer: peer) }
            context.fireChannelInactive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let packet = unwrapInboundIn(data)
            guard let peer, let first = packet.getInteger(at: packet.readerIndex, as: UInt8.self),
                  let kind = PacketKind.classify(first) else {
                port.metrics.dropped.increment()
                return
            }
            if kind == .stun {
                guard let reply = port.handleSTUN(packet, from: peer, path: .tcp(context.channel)) else { return }
                if !validated, port.state.withLock({ $0.agent.session(for: peer) }) != nil {
                    validated = true
                    timeout?.cancel()
                }
                var out = context.channel.allocator.buffer(capacity: reply.count + 2)
                out.writeInteger(UInt16(reply.count))
                out.writeBytes(reply)
                context.writeAndFlush(wrapOutboundOut(out), promise: nil)
            } else if !port.deliver(packet, kind: kind, from: peer, path: .tcp(context.channel)) && !validated {
                // Media before any valid check: this is not an ICE peer.
                context.close(promise: nil)
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            port.logger.debug("ICE-TCP connection closed", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
    }
}
