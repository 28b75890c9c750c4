import ListenerGuard
import DTLS
import Logging
import Metrics
import NIOCore
import NIOPosix
import ServiceLifecycle
import STUN

/// The STUN and TURN server on UDP and TCP (default 3478). Binding is answered by ``BindingResponder``; with
/// TURN credentials configured, the TURN methods, Send indications and ChannelData go to ``TURNEndpoint``
/// (docs/TURN.md). Over TCP, messages are cut from the stream by their length field (RFC 8489 6.2.2, RFC 8656
/// 12.5 for ChannelData); a connection that sends something that is neither is closed.
public final class STUNServer: Service, Sendable {
    public struct Configuration: Sendable, Equatable {
        public var host = "0.0.0.0"
        /// 0 picks a free port (tests); UDP and TCP then get different ones.
        public var port = 3478
        /// The TURN server on the same port (on unless `turn.enabled` is false).
        public var turn = TURNConfiguration()
        public init() {}
    }

    public struct BoundPorts: Sendable, Equatable {
        public var udp: Int
        public var tcp: Int
        /// TURN over TLS, when configured.
        public var tls: Int? = nil
    }

    let configuration: Configuration
    let responder: BindingResponder
    let logger: Logger
    let onBound: @Sendable (BoundPorts) -> Void
    let answered: Counter
    let dropped: Counter
    let refused: Counter
    /// Set when TURN is on: the media port's number is known only once it is bound.
    let turn: TURNEndpoint?
    let turnMetrics: TURNMetrics
    /// TURN over TLS's certificate and key, loaded at start.
    let tls: TLSServerContext?

    /// Throws when TURN over TLS's certificate or key cannot be loaded.
    public init(configuration: Configuration, metricsFactory: any MetricsFactory, logger: Logger,
                onBound: @escaping @Sendable (BoundPorts) -> Void = { _ in }) throws(DTLSError) {
        self.configuration = configuration
        self.responder = BindingResponder()
        self.logger = logger
        self.onBound = onBound
        self.answered = Counter(label: "liveswarm_stun_responses_total", factory: metricsFactory)
        self.dropped = Counter(label: "liveswarm_stun_dropped_total", factory: metricsFactory)
        self.refused = Counter(label: "liveswarm_stun_refused_datagrams_total", factory: metricsFactory)
        self.turnMetrics = TURNMetrics(factory: metricsFactory)
        turn = configuration.turn.isEnabled
            ? TURNEndpoint(configuration: configuration.turn, listenHost: configuration.host, logger: logger,
                           group: MultiThreadedEventLoopGroup.singleton, refused: refused)
            : nil
        if let files = configuration.turn.tls, configuration.turn.isEnabled {
            tls = try TLSServerContext(certificateChain: files.certificate, privateKey: files.key)
        } else {
            tls = nil
        }
    }

    /// TURN credentials for one session (the media port only, unless `general`), valid `ttl` seconds; nil when TURN
    /// is off.
    public func sessionCredentials(ttl: Double, general: Bool = false) -> (username: String, password: String)? {
        turn?.mintSession(ttl: ttl, general: general)
    }

    /// The relays' decisions and counters (nil when TURN is off).
    public var allocations: Allocations? { turn?.allocations }

    /// Every allocation, for the API (nil when TURN is off).
    public func turnSummaries() -> [Allocations.Summary]? { turn.map { $0.allocations.summaries(now: $0.now()) } }

    /// The SFU's media port: TURN clients may reach it on the server's own addresses.
    public func allowMediaPort(_ port: Int) { turn?.allowMediaPort(port) }

    public func run() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let responding = Responding(responder: responder, logger: logger, answered: answered, dropped: dropped, turn: turn,
                                    idleSeconds: configuration.turn.limits.idleConnectionSeconds)
        // Read by swift-nio, written by a DatagramWriter: a datagram the kernel refuses (a firewall's EPERM) is
        // dropped alone instead of making swift-nio close the socket, and the server with it.
        let (udp, writer) = try await DatagramWriter.listen(group: group, host: configuration.host, port: configuration.port,
                                                            receiveBuffer: 1 << 20, what: "STUN/TURN port", logger: logger,
                                                            refused: refused) { UDPHandler(responding: responding, writer: $0) }
        defer { writer.close() }
        let tcp: any Channel
        do {
            tcp = try await ServerBootstrap(group: group)
                .pausingAcceptsWhenExhausted(what: "STUN/TURN over TCP", logger: logger)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        // ChannelData is taken only on a channel this connection has bound: anything else starting
                        // with 0x40-0x7F (an HTTP request's "GET ") is garbage, closed at once rather than waited on.
                        try Self.addStreamHandlers(channel, responding: responding, transport: .tcp)
                    }
                }
                .bind(host: configuration.host, port: configuration.port).get()
        } catch {
            try? await udp.close()
            throw error
        }
        // TURN over TLS: its own port, TLS in front of the same framing and handling as TCP.
        let tlsListener: (any Channel)?
        if let tls {
            do {
                tlsListener = try await ServerBootstrap(group: group)
                    .pausingAcceptsWhenExhausted(what: "TURN over TLS", logger: logger)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .childChannelInitializer { [logger] channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(TLSServerHandler(connection: try tls.connection(), logger: logger))
                            try Self.addStreamHandlers(channel, responding: responding, transport: .tls)
                        }
                    }
                    .bind(host: configuration.host, port: configuration.turn.tls?.port ?? 0).get()
            } catch {
                try? await udp.close()
                try? await tcp.close()
                throw error
            }
        } else {
            tlsListener = nil
        }
        let ports = BoundPorts(udp: udp.localAddress?.port ?? 0, tcp: tcp.localAddress?.port ?? 0, tls: tlsListener?.localAddress?.port)
        turn?.udpWriter.withLockedValue { $0 = writer }
        logger.info(turn == nil ? "STUN listening" : "STUN and TURN listening",
                    metadata: ["udp": "\(ports.udp)", "tcp": "\(ports.tcp)", "tls": "\(ports.tls.map(String.init) ?? "off")"])
        onBound(ports)
        let timers = Task { [turn, turnMetrics] in await turn?.runTimers(metrics: turnMetrics) }
        defer { timers.cancel() }
        // Cancellation (the service group stopping, a test's server stopping) and graceful shutdown both close
        // the sockets; waiting on the UDP socket's close alone would ignore cancellation and hang the group.
        await withTaskCancellationOrGracefulShutdownHandler {
            try? await udp.closeFuture.get()
        } onCancelOrGracefulShutdown: {
            udp.close(promise: nil)
            tcp.close(promise: nil)
            tlsListener?.close(promise: nil)
        }
        turn?.udpWriter.withLockedValue { $0 = nil }
        try? await tcp.close()
        try? await tlsListener?.close()
    }

    /// A stream connection's handlers (after TLS, for `turns:`): messages cut by their length, then answered.
    static func addStreamHandlers(_ channel: any Channel, responding: Responding, transport: TURNTransport) throws {
        // ChannelData is taken only on a channel this connection has bound: anything else starting with 0x40-0x7F
        // (an HTTP request's "GET ") is garbage, closed at once rather than waited on.
        let isBound = boundChannels(responding.turn, remote: channel.remoteAddress, transport: transport)
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(TCPFramer(isBound: isBound)))
        try channel.pipeline.syncOperations.addHandler(TCPHandler(responding: responding, transport: transport))
    }

    /// For a stream connection from `remote`: whether it has bound a channel number (nil without TURN).
    static func boundChannels(_ turn: TURNEndpoint?, remote: SocketAddress?, transport: TURNTransport) -> (@Sendable (UInt16) -> Bool)? {
        guard let turn else { return nil }
        guard let remote, let address = PeerAddress(remote, transport: .tcp)?.stunAddress else { return { _ in false } }
        let client = TURNClient(transport: transport, address: address)
        return { number in turn.allocations.hasChannel(number, for: client) }
    }

    /// What both transports do with a message the fast path did not take: answer it, or drop it, counted and
    /// logged. The mapped address is the remote socket's (an IPv4 client of a dual-stack socket as IPv4).
    struct Responding: Sendable {
        let responder: BindingResponder
        let logger: Logger
        let answered: Counter
        let dropped: Counter
        let turn: TURNEndpoint?
        /// How long a TCP or TLS connection may go without an allocation.
        let idleSeconds: Double

        func reply(to bytes: [UInt8], from remote: SocketAddress?, transport: ICETransport) -> [UInt8]? {
            guard let remote, let source = PeerAddress(remote, transport: transport)?.stunAddress else { return nil }
            switch responder.respond(to: bytes, from: source) {
            case .reply(let out):
                answered.increment()
                return out
            case .drop(let why):
                dropped.increment()
                logger.debug("STUN message dropped", metadata: ["from": "\(remote)", "transport": "\(transport)", "why": "\(why)"])
                return nil
            }
        }
    }

    /// Answers each datagram from the address it came from.
    final class UDPHandler: ChannelInboundHandler, Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        typealias OutboundOut = AddressedEnvelope<ByteBuffer>
        let responding: Responding
        let writer: DatagramWriter

        init(responding: Responding, writer: DatagramWriter) {
            self.responding = responding
            self.writer = writer
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = unwrapInboundIn(data)
            let out: ByteBuffer
            if let turn = responding.turn, let first = envelope.data.getInteger(at: envelope.data.readerIndex, as: UInt8.self),
                ChannelData.isChannelData(firstByte: first) || !Self.isBinding(envelope.data),
                let client = PeerAddress(envelope.remoteAddress, transport: .udp)?.stunAddress {
                let remote = envelope.remoteAddress
                if turn.handle(Array(envelope.data.readableBytesView), from: TURNClient(transport: .udp, address: client), reply: { [writer] bytes in
                    writer.send([AddressedEnvelope(remoteAddress: remote, data: ByteBuffer(bytes: bytes))])
                }) { return }
            }
            if let fast = responding.responder.fastBindingResponse(to: envelope.data, from: envelope.remoteAddress,
                                                                   allocator: context.channel.allocator) {
                responding.answered.increment()
                out = fast
            } else if let reply = responding.reply(to: Array(envelope.data.readableBytesView), from: envelope.remoteAddress,
                                                   transport: .udp) {
                out = context.channel.allocator.buffer(bytes: reply)
            } else {
                return
            }
            writer.enqueue(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: out))
        }

        /// A read burst's answers leave together.
        func channelReadComplete(context: ChannelHandlerContext) {
            writer.flush()
        }

        /// A Binding message by its type field (0x0001 request, 0x0011 indication...): the STUN responder's.
        static func isBinding(_ b: ByteBuffer) -> Bool {
            guard let type = b.getInteger(at: b.readerIndex, as: UInt16.self) else { return true }
            return MessageType(rawValue: type).method == .binding
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // A UDP socket reports ICMP errors of earlier sends here; the socket itself is fine.
            responding.logger.debug("STUN UDP error", metadata: ["error": "\(error)"])
        }
    }

    /// Cuts a TCP stream into STUN messages by their length field, and, with TURN, ChannelData messages by
    /// theirs (padded to 4 bytes over TCP, RFC 8656 12.5).
    struct TCPFramer: ByteToMessageDecoder {
        typealias InboundOut = [UInt8]
        struct NotSTUN: Error {}
        /// With TURN: whether this connection has bound a channel number.
        let isBound: (@Sendable (UInt16) -> Bool)?

        mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
            guard buffer.readableBytes >= 4, let header = buffer.getBytes(at: buffer.readerIndex, length: 4) else {
                return .needMoreData
            }
            if let isBound, ChannelData.isChannelData(firstByte: header[0]) {
                guard isBound(UInt16(header[0]) << 8 | UInt16(header[1])) else { throw NotSTUN() }
                let framed = ChannelData.framedLength(header: header)!
                guard buffer.readableBytes >= framed, let bytes = buffer.readBytes(length: framed) else { return .needMoreData }
                context.fireChannelRead(wrapInboundOut(bytes))
                return .continue
            }
            guard header[0] & 0xC0 == 0, let length = Message.messageLength(header: header),
                length <= Message.defaultMaximumSize else { throw NotSTUN() }
            guard let bytes = buffer.readBytes(length: length) else { return .needMoreData }
            context.fireChannelRead(wrapInboundOut(bytes))
            return .continue
        }
    }

    /// Over TCP or, behind ``TLSServerHandler``, TLS.
    final class TCPHandler: ChannelInboundHandler, Sendable {
        typealias InboundIn = [UInt8]
        typealias OutboundOut = ByteBuffer
        let responding: Responding
        let transport: TURNTransport

        init(responding: Responding, transport: TURNTransport) { (self.responding, self.transport) = (responding, transport) }

        func channelActive(context: ChannelHandlerContext) {
            if let turn = responding.turn, let client = client(context) { turn.connected(client, context.channel) }
            // A connection without an allocation is closed when the check finds it so: a silent client, or one
            // sending half a message, holds no socket for long.
            let channel = context.channel
            let every = TimeAmount.milliseconds(Int64(responding.idleSeconds * 1000))
            let client = client(context)
            context.eventLoop.scheduleRepeatedTask(initialDelay: every, delay: every) { [turn = responding.turn, logger = responding.logger] task in
                // A closed connection stops its check (and lets go of the channel).
                guard channel.isActive else {
                    task.cancel()
                    return
                }
                guard client.map({ turn?.allocations.has($0) ?? false }) != true else { return }
                task.cancel()
                logger.debug("STUN/TURN stream closed: no allocation", metadata: ["client": "\(client.map { "\($0)" } ?? "?")"])
                channel.close(promise: nil)
            }
            context.fireChannelActive()
        }

        func channelInactive(context: ChannelHandlerContext) {
            if let turn = responding.turn, let client = client(context) { turn.disconnected(client) }
            context.fireChannelInactive()
        }

        func client(_ context: ChannelHandlerContext) -> TURNClient? {
            guard let remote = context.channel.remoteAddress, let a = PeerAddress(remote, transport: .tcp)?.stunAddress else { return nil }
            return TURNClient(transport: transport, address: a)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let bytes = unwrapInboundIn(data)
            if let turn = responding.turn, let client = client(context) {
                let channel = context.channel
                if turn.handle(bytes, from: client, reply: { channel.writeAndFlush(channel.allocator.buffer(bytes: $0), promise: nil) }) { return }
            }
            guard let reply = responding.reply(to: bytes, from: context.channel.remoteAddress, transport: .tcp) else { return }
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: reply)), promise: nil)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            responding.logger.debug("STUN TCP connection closed", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
    }
}
