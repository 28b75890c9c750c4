import Foundation
import HLS
import Hummingbird
import Logging
import Metrics
import NIOCore
import Prometheus
import RTMPBridge
import SFU
import Signaling
import StreamHub

/// A request context that knows the client's address (Hummingbird's tracing reads it).
struct HTTPContext: RequestContext, RemoteAddressRequestContext {
    var coreContext: CoreRequestContextStorage
    let remoteAddress: SocketAddress?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

/// The HTTP surface on port 8080: HTTP-FLV, HLS (see HLSRoutes), the JSON API and Prometheus metrics.
struct HTTPRoutes: Sendable {
    let hub: StreamHub
    let hls: HLSOrigin
    let registry: PrometheusCollectorRegistry
    let flvMetrics: ProtocolMetrics
    let metricsFactory: any MetricsFactory
    let logger: Logger
    let probes: RTCProbes?
    let webRTC: WebRTCRoutes?
    let tracker: TrackerEndpoint
    let rooms: RoomRoutes?
    let iceServers: ICEServerRoutes?
    let turn: TURNRoutes?
    let operators: OperatorAuthentication
    let origin: OriginCounter
    let reports = P2PReports()
    let dashboard: Dashboard
    let pushes: PushManager?

    init(hub: StreamHub, hls: HLSOrigin, pushes: PushManager? = nil, registry: PrometheusCollectorRegistry, metricsFactory: any MetricsFactory, logger: Logger,
         tracker: TrackerEndpoint, probes: RTCProbes? = nil, webRTC: WebRTCRoutes? = nil, rooms: RoomRoutes? = nil,
         iceServers: ICEServerRoutes? = nil, turn: TURNRoutes? = nil, operators: OperatorAuthentication = .init(token: nil)) {
        self.tracker = tracker
        self.pushes = pushes
        self.operators = operators
        self.turn = turn
        self.iceServers = iceServers
        self.rooms = rooms
        self.probes = probes
        self.webRTC = webRTC
        self.hub = hub
        self.hls = hls
        self.registry = registry
        self.metricsFactory = metricsFactory
        self.origin = OriginCounter(factory: metricsFactory)
        self.flvMetrics = ProtocolMetrics(protocolName: "http-flv", factory: metricsFactory)
        self.logger = logger
        self.dashboard = Dashboard(
            inputs: .init(hub: hub, webRTC: webRTC?.registry, rooms: rooms?.endpoint,
                          turn: { [turn] in
                              guard let turn, let counters = turn.counters(), let relays = turn.summaries() else { return nil }
                              return (relays.count, counters)
                          },
                          origin: origin, reports: reports, tracker: tracker, counters: metricsFactory as? ReadableMetricsFactory),
            metricsFactory: metricsFactory)
    }

    func router(webRoot: String? = nil) -> Hummingbird.Router<HTTPContext> {
        let router = Hummingbird.Router(context: HTTPContext.self)
        if let webRoot {
            // Files are looked up only when no route answered (a 404), so API and media paths win. Middleware
            // covers the routes added after it: this comes first.
            router.add(middleware: WebRootMiddleware(root: webRoot, logger: logger))
        }
        // Players on other origins (a page on a CDN, a dev server) read FLV and the API directly.
        router.add(middleware: CORSMiddleware(allowOrigin: .all, allowHeaders: [.contentType, .authorization, .range],
                                              allowMethods: [.get, .head, .post, .put, .delete, .options]))
        router.add(middleware: ExposeHeadersMiddleware())
        router.get("/api/v1/streams") { request, _ in
            // Players list the streams; the publishers' addresses only for those who may see them.
            var streams = hub.snapshot()
            if !operators.allows(request) {
                for i in streams.indices { streams[i].publisherPeer = nil }
            }
            return StreamList(streams: streams, webrtc: webRTC?.registry.snapshot() ?? [])
        }
        router.get("/api/v1/streams/:app/:stream") { request, context in
            // Every viewer's address.
            try operators.checkWhenSet(request)
            let key = try streamKey(context.parameters.require("app"), context.parameters.require("stream"))
            guard let source = hub.source(key) else { throw HTTPError(.notFound, message: "no stream \(key)") }
            return StreamDetail(stream: source.snapshot(), viewers: source.viewers.map(\.stats).sorted { $0.id < $1.id },
                                hls: origin.audience.snapshot()[key] ?? [])
        }
        dashboard.add(to: router)
        addPushRoutes(to: router)
        router.get("/metrics") { _, _ in
            metricsResponse()
        }
        addHLSRoutes(to: router)
        router.get("/api/v1/p2p") { _, _ in
            P2PSummary(origin: origin, reports: reports, tracker: tracker)
        }
        // The operator's P2P switch for a stream: {"enabled": false} sends its P2P viewers to the origin.
        router.put("/api/v1/p2p/streams/:app/:stream") { request, context -> P2PSwitch in
            try operators.check(request)
            let key = try streamKey(context.parameters.require("app"), context.parameters.require("stream"))
            let body = try await request.body.collect(upTo: 1024)
            let wanted: P2PSwitch
            do {
                wanted = try JSONDecoder().decode(P2PSwitch.self, from: Data(buffer: body))
            } catch {
                throw HTTPError(.badRequest, message: #"the body is {"enabled": true} or {"enabled": false}"#)
            }
            guard tracker.setP2P(wanted.enabled, stream: "\(key)") else {
                throw HTTPError(.conflict, message: "P2P is already off for \(TrackerEndpoint.maxSwitchedOff) streams: switch some on first")
            }
            return P2PSwitch(stream: "\(key)", enabled: wanted.enabled)
        }
        router.post("/api/v1/p2p/reports") { request, _ -> HTTPResponse.Status in
            let body = try await request.body.collect(upTo: 4096)
            let report: P2PReports.Report
            do {
                report = try JSONDecoder().decode(P2PReports.Report.self, from: Data(buffer: body))
            } catch {
                throw HTTPError(.badRequest, message: "not a viewer report: \(error)")
            }
            let parts = report.stream.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2 else { throw HTTPError(.badRequest, message: "stream must be APP/STREAM") }
            let key = try streamKey(String(parts[0]), String(parts[1]))
            // Only streams that exist get figures: made-up names would grow the figures (and the dashboard) forever.
            guard hub.source(key) != nil || hls.epochs()[key] != nil else {
                throw HTTPError(.notFound, message: "no stream \(key)")
            }
            do throws(P2PReports.Refusal) {
                try reports.add(report, key: key)
                origin.audience.reported(key, id: report.viewer)
            } catch .invalid(let why) {
                throw HTTPError(.badRequest, message: why)
            } catch .tooMany {
                throw HTTPError(.serviceUnavailable, message: "too many viewers reporting on \(key)")
            }
            return .noContent
        }
        probes?.add(to: router)
        webRTC?.add(to: router)
        rooms?.add(to: router)
        iceServers?.add(to: router)
        turn?.add(to: router)
        router.get("/:app/:file") { request, context in
            let file = try context.parameters.require("file")
            if file.hasSuffix(".m3u8") { return try await hlsPlaylist(request: request, context: context, file: file) }
            if file.hasSuffix(".ts") { return try hlsSegment(request: request, context: context, file: file) }
            return try flv(request: request, context: context, file: file)
        }
        return router
    }

    func streamKey(_ app: String, _ stream: String) throws -> StreamKey {
        guard let key = StreamKey(app: app, stream: stream) else {
            throw HTTPError(.badRequest, message: "invalid stream name: use letters, digits, '-', '_' and '.'")
        }
        return key
    }

    /// `GET /app/stream.flv` when `HTTPFLVHandler` did not take it: the viewer may not watch it (401, 403), the
    /// stream is not live (404) or the name is invalid (400). Live streams never reach the router.
    func flv(request: Request, context: HTTPContext, file: String) throws -> Response {
        guard file.hasSuffix(".flv") else { throw HTTPError(.notFound) }
        let key = try streamKey(context.parameters.require("app"), String(file.dropLast(4)))
        try checkPlayback(key, request)
        throw HTTPError(.notFound, message: "stream \(key) is not live")
    }

    func metricsResponse() -> Response {
        dashboard.recordViewerGauges()
        Metrics.Gauge(label: "liveswarm_hls_bytes", factory: metricsFactory).record(hls.memoryBytes)
        Metrics.Gauge(label: "liveswarm_hls_blocked_requests", factory: metricsFactory).record(hls.waitingRequests)
        rooms?.recordMetrics(factory: metricsFactory)
        ProcessResources.current()?.record(factory: metricsFactory)
        var buffer = ByteBuffer()
        buffer.writeBytes(registry.emitToBuffer())
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: buffer))
    }
}

struct StreamList: ResponseEncodable {
    var streams: [StreamSnapshot]
    /// Streams published over WHIP (they do not go through the stream hub yet).
    var webrtc: [RouterRegistry.Snapshot]
}

/// The body and answer of `PUT /api/v1/p2p/streams/APP/STREAM`.
struct P2PSwitch: ResponseEncodable, Decodable {
    var stream: String?
    var enabled: Bool
}

struct StreamDetail: ResponseEncodable {
    var stream: StreamSnapshot
    var viewers: [ViewerStats]
    /// HLS and LL-HLS viewers (``HLSAudience``), with what the origin served each.
    var hls: [HLSAudience.Viewer]
}

/// `Access-Control-Expose-Headers` on every cross-origin response (the CORS spec wants it on the actual response,
/// where Hummingbird's CORSMiddleware does not put it), so a page on another origin can read a WHIP/WHEP
/// session's `Location` and `Link`, and a part's `Repr-Digest`.
struct ExposeHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
    static var exposed: String { "Content-Length, Content-Type, Location, Link, Repr-Digest" }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.headers[.origin] != nil else { return try await next(request, context) }
        do {
            var response = try await next(request, context)
            response.headers[.accessControlExposeHeaders] = Self.exposed
            return response
        } catch let error as HTTPError {
            var headers = error.headers
            headers[.accessControlExposeHeaders] = Self.exposed
            throw HTTPError(error.status, headers: headers, message: error.body)
        }
    }
}
