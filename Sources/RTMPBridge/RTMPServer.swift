import ListenerGuard
import Logging
import Metrics
import NIOCore
import NIOPosix
import ServiceLifecycle
import StreamHub
import Locks

/// The RTMP listener (TCP 1935 by default): ingest from encoders and playback to RTMP players.
public final class RTMPServer: Service, Sendable {
    let configuration: RTMPConfiguration
    let hub: StreamHub
    let metrics: ProtocolMetrics
    let logger: Logger
    let group: any EventLoopGroup
    let onBound: @Sendable (SocketAddress) -> Void
    let connections = Mutex<[ObjectIdentifier: any Channel]>([:])
    let refused = Atomic<Int>(0)

    public init(configuration: RTMPConfiguration, hub: StreamHub, metricsFactory: any MetricsFactory,
                logger: Logger, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                onBound: @escaping @Sendable (SocketAddress) -> Void = { _ in }) {
        self.configuration = configuration
        self.hub = hub
        self.metrics = ProtocolMetrics(protocolName: "rtmp", factory: metricsFactory)
        self.logger = logger
        self.group = group
        self.onBound = onBound
    }

    public func run() async throws {
        let server = try await ServerBootstrap(group: group)
            .pausingAcceptsWhenExhausted(what: "RTMP", logger: logger)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [self] channel in
                let key = ObjectIdentifier(channel)
                let admitted = connections.withLock { c -> Bool in
                    guard c.count < configuration.maxConnections else { return false }
                    c[key] = channel
                    return true
                }
                guard admitted else {
                    refused.add(1, ordering: .relaxed)
                    if refused.load(ordering: .relaxed) % 100 == 1 {
                        logger.warning("RTMP connection refused: at the limit", metadata: [
                            "limit": "\(configuration.maxConnections)", "refusedSoFar": "\(refused.load(ordering: .relaxed))",
                            "peer": "\(channel.remoteAddress.map { "\($0)" } ?? "?")"])
                    }
                    return channel.close()
                }
                let id = hub.makeID()
                var log = logger
                log[metadataKey: "conn"] = "rtmp-\(id)"
                let handler = RTMPConnectionHandler(id: id, hub: hub, configuration: configuration, metrics: metrics, logger: log)
                channel.closeFuture.whenComplete { [self] _ in _ = connections.withLock { $0.removeValue(forKey: key) } }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .bind(host: configuration.host, port: configuration.port).get()
        if let address = server.localAddress {
            logger.info("RTMP listening", metadata: ["address": "\(address)"])
            onBound(address)
        }
        try await withTaskCancellationOrGracefulShutdownHandler {
            try await server.closeFuture.get()
        } onCancelOrGracefulShutdown: { [self] in
            server.close(promise: nil)
            for c in connections.withLock({ Array($0.values) }) { c.close(promise: nil) }
        }
    }
}
