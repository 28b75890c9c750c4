import ListenerGuard
import DTLS
import HLS
import ICE
import SFU
import Signaling
import Hummingbird
import HummingbirdWebSocket
import Logging
import Metrics
import NIOCore
import NIOPosix
import Prometheus
import RTMPBridge
import ServiceLifecycle
import StreamHub
import Locks

/// The whole server: one stream hub and every listener, run as one ServiceGroup with graceful shutdown.
public final class LiveSwarm: Sendable {
    public let configuration: ServerConfiguration
    public let hub: StreamHub
    public let registry = PrometheusCollectorRegistry()
    public let hls: HLSOrigin
    /// Streams pushed to other RTMP servers (`/api/v1/streams/APP/STREAM/pushes`).
    public let pushes: PushManager
    /// Prometheus's, with counters the dashboard can read back.
    let metricsFactory: ReadableMetricsFactory
    let logger: Logger
    /// The STUN/TURN server while running.
    let stunServer = Mutex<STUNServer?>(nil)

    /// The TURN relays' decisions and counters, while running with TURN on.
    public var turnAllocations: Allocations? { stunServer.withLock { $0?.allocations } }
    /// The WebRTC streams (WHIP/WHEP), while running.
    let routers = Mutex<RouterRegistry?>(nil)
    public var webRTC: RouterRegistry? { routers.withLock { $0 } }

    /// Where the listeners ended up (ports chosen by the OS when configured as 0).
    public struct BoundPorts: Sendable, Equatable {
        public var http: Int
        public var rtmp: Int
        public var stunUDP: Int
        public var stunTCP: Int
        public var rtcUDP: Int
        /// Nil when ICE-TCP is off.
        public var rtcTCP: Int?
        /// TURN over TLS; nil when not configured.
        public var turnTLS: Int? = nil
    }

    public init(configuration: ServerConfiguration, logger: Logger = Logger(label: "liveswarm")) {
        self.configuration = configuration
        self.logger = logger
        self.hub = StreamHub(configuration: configuration.hub, logger: logger)
        self.hls = HLSOrigin(hub: hub, configuration: configuration.hls, eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
                             logger: logger)
        self.metricsFactory = ReadableMetricsFactory(base: PrometheusMetricsFactory(registry: registry))
        self.pushes = PushManager(hub: hub, logger: logger)
    }

    /// Runs until SIGINT/SIGTERM (when `handleSignals`) or until the calling task is cancelled.
    /// `onReady` is called once every listener is bound.
    public func run(handleSignals: Bool = true, onReady: @escaping @Sendable (BoundPorts) -> Void = { _ in }) async throws {
        struct Partial { var http: Int?, rtmp: Int?, stun: STUNServer.BoundPorts?, rtc: MediaPort.BoundPorts? }
        let ports = Mutex(Partial())
        let report: @Sendable (_ update: (inout Partial) -> Void) -> Void = { update in
            let ready: BoundPorts? = ports.withLock { p in
                update(&p)
                guard let h = p.http, let r = p.rtmp, let s = p.stun, let m = p.rtc else { return nil }
                return BoundPorts(http: h, rtmp: r, stunUDP: s.udp, stunTCP: s.tcp, rtcUDP: m.udp, rtcTCP: m.tcp, turnTLS: s.tls)
            }
            if let ready { onReady(ready) }
        }
        var stunConfiguration = configuration.stun
        // TURN refuses to relay to the server's own ports other than the media port: every address it listens on.
        stunConfiguration.turn.serverAddresses = [configuration.listenHost, configuration.rtmp.host, configuration.rtc.host]
            + configuration.rtc.advertisedHosts
        let stun = try STUNServer(configuration: stunConfiguration, metricsFactory: metricsFactory, logger: logger,
                              onBound: { bound in report { $0.stun = bound } })
        stunServer.withLock { $0 = stun }
        let rtmp = RTMPServer(configuration: configuration.rtmp, hub: hub, metricsFactory: metricsFactory,
                              logger: logger, onBound: { bound in report { $0.rtmp = bound.port } })
        // The DTLS identity of every WebRTC transport: loaded from the configured files, or made at start (its
        // fingerprint goes into each answer).
        let certificate = try configuration.dtlsCertificate?.load() ?? Certificate()
        logger.info("DTLS certificate", metadata: ["fingerprint": "\(certificate.fingerprint)",
                                                   "from": "\(configuration.dtlsCertificate?.certificate ?? "generated at start")"])
        let mediaPort = MediaPort(configuration: configuration.rtc, metricsFactory: metricsFactory, logger: logger,
                                  onBound: { bound in
                                      stun.allowMediaPort(bound.udp)
                                      report { $0.rtc = bound }
                                  })
        let sfu = RouterRegistry(port: mediaPort, certificate: certificate, options: configuration.webRTC, hub: hub,
                                 eventLoops: MultiThreadedEventLoopGroup.singleton, logger: logger)
        routers.withLock { $0 = sfu }
        let rooms = RoomEndpoint(configuration: configuration.rooms, registry: sfu, logger: logger)
        // Weakly: the hub outlives nothing it is given (rooms hold the SFU, which holds the hub).
        hub.setPlaybackGate { [weak rooms] key, token in rooms?.playbackRefusal(key, token: token) }
        // Where sessions start (GET /api/v1/ice-servers, a room's joined, WHIP/WHEP Link headers), clients get STUN
        // and TURN with credentials of their own that reach only the media port.
        let iceServers = ICEServerDirectory(ttl: Int(configuration.stun.turn.sessionTTL), forP2P: configuration.stun.turn.forP2P,
                                            ports: { ports.withLock { $0.stun.map { ($0.udp, $0.tcp, $0.tls) } } },
                                            mint: { [ttl = configuration.stun.turn.sessionTTL] general in stun.sessionCredentials(ttl: ttl, general: general) })
        let routes = HTTPRoutes(hub: hub, hls: hls, pushes: pushes, registry: registry, metricsFactory: metricsFactory, logger: logger,
                                tracker: TrackerEndpoint(configuration: configuration.tracker, hls: hls, logger: logger),
                                probes: RTCProbes(port: mediaPort, certificate: certificate, logger: logger),
                                webRTC: WebRTCRoutes(registry: sfu, authentication: configuration.rtmp.authentication, iceServers: iceServers),
                                rooms: RoomRoutes(endpoint: rooms, operators: OperatorAuthentication(token: configuration.apiToken)),
                                iceServers: ICEServerRoutes(directory: iceServers),
                                turn: TURNRoutes(summaries: { stun.turnSummaries() }, counters: { stun.allocations?.snapshot },
                                                 operators: OperatorAuthentication(token: configuration.apiToken)),
                                operators: OperatorAuthentication(token: configuration.apiToken))
        // Both WebSockets share the port's frame limit: the larger of the two, each refusing more than its own.
        let frameLimit = max(configuration.tracker.maxMessageBytes, configuration.rooms.maxMessageBytes)
        let (hub, flvMetrics, logger) = (self.hub, routes.flvMetrics, self.logger)
        let webRoot = configuration.webRoot ?? WebDemo.find()
        if let webRoot {
            logger.info("web demo pages", metadata: ["folder": "\(webRoot)"])
        } else {
            logger.warning("web demo pages not found: run from the checkout or pass --web-root")
        }
        let router = routes.router(webRoot: webRoot)
        let rateLimiter = try HTTPRateLimiter(configuration.httpRateLimits)
        let tracker = routes.tracker
        let http = Application(
            router: router,
            // HTTP-FLV viewers of live streams are served by HTTPFLVHandler on the connection's event loop;
            // the router answers everything else, including FLV requests for streams that are not live.
            // `/tracker` (the P2P tracker) and `/ws` (meeting rooms) are upgraded to WebSockets; a message over
            // the endpoint's limit closes the connection with 1009.
            // Requests over the port's limits (URL, headers, body) are answered and closed before they are read
            // further (HTTPLimits).
            server: .limitedHTTP1WebSocketUpgrade(
                limits: configuration.httpLimits, rateLimiter: rateLimiter, logger: logger,
                configuration: .init(
                    http1: .init(additionalChannelHandlers: [HTTPFLVHandler(hub: hub, metrics: flvMetrics, logger: logger)]),
                    // A ping every 2 s, and a connection whose ping is unanswered by the next is closed: a dead
                    // room connection is noticed within about 4 s (docs/ROOMS.md, Connection).
                    ws: .init(maxFrameSize: frameLimit, autoPing: .enabled(timePeriod: .seconds(2)))),
                shouldUpgrade: { request, channel, _ in
                    switch request.path?.split(separator: "?", maxSplits: 1).first {
                    case "/tracker":
                        return .upgrade([:]) { inbound, outbound, context in
                            await tracker.serve(inbound: inbound, outbound: outbound, channel: channel, frameLimit: frameLimit,
                                                logger: context.logger)
                        }
                    case "/ws":
                        // STUN and TURN on the host the page used (what a browser behind NAT can reach).
                        let servers = request.authority.flatMap(ICEServerDirectory.host(ofAuthority:))
                            .map { iceServers.servers(host: $0) } ?? []
                        return .upgrade([:]) { inbound, outbound, context in
                            await rooms.serve(inbound: inbound, outbound: outbound, channel: channel, iceServers: servers,
                                              frameLimit: frameLimit, logger: context.logger)
                        }
                    default:
                        return .dontUpgrade
                    }
                }),
            configuration: .init(address: .hostname(configuration.listenHost, port: configuration.httpPort),
                                 serverName: "LiveSwarm"),
            onServerRunning: { [logger] channel in
                channel.pauseAcceptsWhenExhausted(what: "HTTP", logger: logger)
                logger.info("HTTP listening", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "?")"])
                report { $0.http = channel.localAddress?.port }
            },
            logger: logger)
        let sweeper = HubSweeper(hub: hub, pushes: pushes, hls: hls)
        for p in configuration.pushes {
            do { try pushes.start(stream: p.stream, url: p.url) } catch {
                logger.error("push from the config not started", metadata: ["stream": "\(p.stream)", "error": "\(error)"])
            }
        }
        let group = ServiceGroup(configuration: .init(
            services: [
                .init(service: Labelled("RTMP (TCP \(configuration.rtmp.host):\(configuration.rtmp.port))", rtmp)),
                .init(service: Labelled("HTTP (TCP \(configuration.listenHost):\(configuration.httpPort))", http)),
                .init(service: Labelled("STUN (UDP and TCP \(configuration.stun.host):\(configuration.stun.port))", stun)),
                .init(service: Labelled("the WebRTC media port (UDP\(configuration.rtc.tcp ? " and TCP" : "") "
                                        + "\(configuration.rtc.host):\(configuration.rtc.port))", mediaPort)),
                .init(service: sweeper),
                .init(service: TrackerShutdown(endpoint: tracker)),
                .init(service: DashboardSampler(dashboard: routes.dashboard)),
                .init(service: RoomHousekeeping(endpoint: rooms)),
            ],
            gracefulShutdownSignals: handleSignals ? [.sigterm, .sigint] : [],
            logger: logger))
        try await group.run()
    }
}

/// A service whose failure names it: "HTTP (TCP 0.0.0.0:8080) stopped: ... Address already in use" tells an
/// operator which port to free, where the bare socket error would not.
struct Labelled: Service {
    let label: String
    let base: any Service

    init(_ label: String, _ base: any Service) { (self.label, self.base) = (label, base) }

    struct Failure: Error, CustomStringConvertible {
        let label: String
        let underlying: any Error
        var description: String { "\(label) stopped: \(underlying)" }
    }

    func run() async throws {
        do {
            try await base.run()
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw Failure(label: label, underlying: error)
        }
    }
}

/// Ends streams whose publisher has not come back within the grace period, once a second; at shutdown,
/// ends every viewer so that open HTTP-FLV responses finish, and answers every blocked HLS playlist request, so
/// that the HTTP server can stop at once.
struct HubSweeper: Service {
    let hub: StreamHub
    var pushes: PushManager? = nil
    var hls: HLSOrigin? = nil

    func run() async throws {
        await withTaskCancellationOrGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                try? await Task.sleep(for: .seconds(1))
                hub.sweep()
            }
        } onCancelOrGracefulShutdown: {
            pushes?.stopAll()
            hls?.releaseWaiters()
            hub.endAllViewers()
        }
    }
}
