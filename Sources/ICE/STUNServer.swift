import Logging
import Metrics
import NIOCore
import NIOPosix
import ServiceLifecycle
import STUN

/// The STUN server on UDP and TCP (default 3478): Binding only, answered by ``BindingResponder``. Over TCP,
/// messages are cut from the stream by their length field (RFC 8489 6.2.2); a connection that sends something
/// that is not STUN, or more than one message's worth of partial bytes, is closed.
public final class STUNServer: Service, Sendable {
    public struct Configuration: Sendable, Equatable {
        public var host = "0.0.0.0"
        /// 0 picks a free port (tests); UDP and TCP then get different ones.
        public var port = 3478
        public init() {}
    }

    public struct BoundPorts: Sendable, Equatable {
        public var udp: Int
        public var tcp: Int
    }

    let configuration: Configuration
    let responder: BindingResponder
    let logger: Logger
    let onBound: @Sendable (BoundPorts) -> Void
    let answered: Counter
    let dropped: Counter

    public init(configuration: Configuration, metricsFactory: any MetricsFactory, logger: Logger,
                onBound: @escaping @Sendable (BoundPorts) -> Void = { _ in }) {
        self.configuration = configuration
        self.responder = BindingResponder()
        self.logger = logger
        self.onBound = onBound
        self.answered = Counter(label: "liveswarm_stun_responses_total", factory: metricsFactory)
        self.dropped = Counter(label: "liveswarm_stun_dropped_total", factory: metricsFactory)
    }

    public func run() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let responding = Responding(responder: responder, logger: logger, answered: answered, dropped: dropped)
        let udp = try await DatagramBootstrap.batched(group: group, receiveBuffer: 1 << 20)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        UDPHandler(responding: responding))
                }
            }
            .bind(host: configuration.host, port: configuration.port).get()
        let tcp: any Channel
        do {
            tcp = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(TCPFramer()))
                        try channel.pipeline.syncOperations.addHandler(
                            TCPHandler(responding: responding))
                    }
                }
                .bind(host: configuration.host, port: configuration.port).get()
        } catch {
            try? await udp.close()
            throw error
        }
        let ports = BoundPorts(udp: udp.localAddress?.port ?? 0, tcp: tcp.localAddress?.port ?? 0)
        logger.info("STUN listening", metadata: ["udp": "\(ports.udp)", "tcp": "\(ports.tcp)"])
        onBound(ports)
        // Cancellation (the service group stopping, a test's server stopping) and graceful shutdown both close
        // the sockets; waiting on the UDP socket's close alone would ignore cancellation and hang the group.
        await withTaskCancellationOrGracefulShutdownHandler {
            try? await udp.closeFuture.get()
        } onCancelOrGracefulShutdown: {
            udp.close(promise: nil)
            tcp.close(promise: nil)
        }
        try? await tcp.close()
    }

    /// What both transports do with a message the fast path did not take: answer it, or drop it, counted and
    /// logged. The mapped address is the remote socket's (an IPv4 client of a dual-stack socket as IPv4).
    struct Responding: Sendable {
        let responder: BindingResponder
        let logger: Logger
        let answered: Counter
        let dropped: Counter

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

        init(responding: Responding) { self.responding = responding }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = unwrapInboundIn(data)
            let out: ByteBuffer
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
            context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: out)), promise: nil)
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            context.flush()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // A UDP socket reports ICMP errors of earlier sends here; the socket itself is fine.
            responding.logger.debug("STUN UDP error", metadata: ["error": "\(error)"])
        }
    }

    /// Cuts a TCP stream into STUN messages by their length field.
    struct TCPFramer: ByteToMessageDecoder {
        typealias InboundOut = [UInt8]
        struct NotSTUN: Error {}

        mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
            guard buffer.readableBytes >= 4, let header = buffer.getBytes(at: buffer.readerIndex, length: 4) else {
                return .needMoreData
            }
            guard header[0] & 0xC0 == 0, let length = Message.messageLength(header: header),
                length <= Message.defaultMaximumSize else { throw NotSTUN() }
            guard let bytes = buffer.readBytes(length: length) else { return .needMoreData }
            context.fireChannelRead(wrapInboundOut(bytes))
            return .continue
        }
    }

    final class TCPHandler: ChannelInboundHandler, Sendable {
        typealias InboundIn = [UInt8]
        typealias OutboundOut = ByteBuffer
        let responding: Responding

        init(responding: Responding) { self.responding = responding }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard let reply = responding.reply(to: unwrapInboundIn(data), from: context.channel.remoteAddress, transport: .tcp) else { return }
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: reply)), promise: nil)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            responding.logger.debug("STUN TCP connection closed", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
    }
}
