import FLV
import HTTPTypes
import Logging
import NIOCore
import NIOHTTPTypes
import StreamHub

/// Serves `GET /APP/STREAM.flv` for a live stream straight from the connection's event loop.
///
/// Sits in the HTTP server pipeline after HTTP parsing and before the application. For a request it can serve,
/// it takes the connection: it answers with the FLV header, then writes each frame's shared tag
/// (`MediaFrame.flvTag`) whenever the viewer has frames and the channel is writable, as RTMP players are fed.
/// No task per viewer, no wait per frame. Everything else (other paths, streams that are not live, methods
/// other than GET) goes on to the application untouched, which answers 404/400 with a reason (a stream that
/// goes live between the two is a 404 the player's retry gets past).
public final class HTTPFLVHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPRequestPart
    public typealias InboundOut = HTTPRequestPart
    public typealias OutboundIn = HTTPResponsePart
    public typealias OutboundOut = HTTPResponsePart

    let hub: StreamHub
    let metrics: ProtocolMetrics
    var logger: Logger

    enum State {
        case idle
        /// Forwarding one request (and its body) to the application.
        case passing
        case serving(Viewer)
        case done
    }

    var state = State.idle

    public init(hub: StreamHub, metrics: ProtocolMetrics, logger: Logger) {
        self.hub = hub
        self.metrics = metrics
        self.logger = logger
    }

    /// `/app/stream.flv` (query ignored) as a stream key, or nil for any other path.
    static func streamKey(path: String) -> StreamKey? {
        let pathOnly = path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let parts = pathOnly.split(separator: "/")
        guard parts.count == 2, parts[1].hasSuffix(".flv") else { return nil }
        return StreamKey(app: String(parts[0]), stream: String(parts[1].dropLast(4)))
    }

    /// The `token` query parameter of a request path.
    static func token(path: String) -> String? {
        guard let q = path.firstIndex(of: "?") else { return nil }
        return StreamHub.token(inQuery: path[path.index(after: q)...])
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch state {
        case .serving, .done:
            return  // the connection belongs to the stream; nothing more is read from it
        case .passing:
            if case .end = part { state = .idle }
            context.fireChannelRead(data)
        case .idle:
            // A stream this viewer may not watch goes to the router too, which says why (401/403).
            guard case .head(let request) = part, request.method == .get, let path = request.path,
                  let key = Self.streamKey(path: path),
                  hub.playbackRefusal(key, token: Self.token(path: path)) == nil,
                  let viewer = try? hub.subscribe(key, protocolName: "http-flv", peer: peer(context)) else {
                if case .head = part { state = .passing }
                context.fireChannelRead(data)
                return
            }
            start(viewer, key: key, request: request, context: context)
        }
    }

    func peer(_ context: ChannelHandlerContext) -> String { context.remoteAddress.map { "\($0)" } ?? "?" }

    func start(_ viewer: Viewer, key: StreamKey, request: HTTPRequest, context: ChannelHandlerContext) {
        state = .serving(viewer)
        logger[metadataKey: "conn"] = "flv-\(viewer.id)"
        logger[metadataKey: "stream"] = "\(key)"
        logger[metadataKey: "peer"] = "\(peer(context))"
        logger.info("HTTP-FLV viewer started")
        metrics.connectionsTotal.increment()
        metrics.connections.increment()

        let snapshot = hub.source(key)?.snapshot()
        var head = HTTPResponse(status: .ok)
        head.headerFields[.contentType] = "video/x-flv"
        head.headerFields[.cacheControl] = "no-cache, no-store"
        head.headerFields[.connection] = "close"
        head.headerFields[.server] = "LiveSwarm"
        // Players on other origins read the stream directly (flv.js, mpegts.js).
        if request.headerFields[.origin] != nil {
            head.headerFields[.accessControlAllowOrigin] = "*"
            head.headerFields[.accessControlExposeHeaders] = "Content-Length, Content-Type"
        }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        let header = Self.fileHeader(for: snapshot)
        metrics.bytesSent.increment(by: header.readableBytes)
        context.writeAndFlush(wrapOutboundOut(.body(header)), promise: nil)

        let sendBuffer = hub.configuration.viewerSendBuffer
        ViewerPump.start(viewer, context: context, sendBuffer: sendBuffer,
                         watermark: .init(low: sendBuffer / 4, high: sendBuffer / 2)) { [self] in deliver(context: context) }
    }

    /// The FLV file header for a stream. A stream whose tracks are not known yet announces both: players wait
    /// briefly for a track that never comes, which is better than ignoring one that does.
    static func fileHeader(for stream: StreamSnapshot?) -> ByteBuffer {
        let hasVideo = stream?.hasVideo ?? true
        let hasAudio = stream?.hasAudio ?? true
        var header = ByteBufferAllocator().buffer(capacity: 13)
        FLVHeader(hasAudio: hasAudio || !hasVideo, hasVideo: hasVideo).write(to: &header)
        return header
    }

    /// Writes the viewer's queued frames as FLV tags (each encoded once for every viewer); ends the response
    /// when the stream ends.
    func deliver(context: ChannelHandlerContext) {
        guard case .serving(let viewer) = state else { return }
        let wrote = ViewerPump.drain(viewer, context: context) { f in
            let tag = f.flvTag
            return (wrapOutboundOut(.body(tag)), tag.readableBytes)
        }
        guard let wrote else {
            logger.info("HTTP-FLV viewer ended: stream over")
            state = .done
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { [channel = context.channel] _ in
                channel.close(promise: nil)
            }
            return
        }
        if wrote > 0 { metrics.bytesSent.increment(by: wrote) }
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { deliver(context: context) }
        context.fireChannelWritabilityChanged()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        if case .serving(let viewer) = state {
            viewer.close()
            metrics.connections.decrement()
            logger.info("HTTP-FLV viewer ended: connection closed")
        }
        state = .done
        context.fireChannelInactive()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if case .serving = state {
            logger.info("HTTP-FLV viewer ended: \(error)")
            context.close(promise: nil)
            return
        }
        context.fireErrorCaught(error)
    }
}
