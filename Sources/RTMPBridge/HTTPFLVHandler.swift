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

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch state {
        case .serving, .done:
            return  // the connection belongs to the stream; nothing more is read from it
        case .passing:
            if case .end = part { state = .idle }
            context.fireChannelRead(data)
        case .idle:
            guard case .head(let request) = part, request.method == .get, let path = request.path,
                  let key = Self.streamKey(path: path),
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
        // Bound what a slow viewer's connection holds outside its queue: kernel buffer and pending writes.
        let sendBuffer = hub.configuration.viewerSendBuffer
        _ = try? context.channel.syncOptions?.setOption(.socketOption(.so_sndbuf), value: SocketOptionValue(sendBuffer))
        _ = try? context.channel.syncOptions?.setOption(.writeBufferWaterMark, value: .init(low: sendBuffer / 4, high: sendBuffer / 2))

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

        let loop = context.eventLoop
        let drain = NIOLoopBound({ [self] in self.deliver(context: context) }, eventLoop: loop)
        viewer.onReadable { loop.execute { drain.value() } }
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

    /// Writes what the viewer has queued while the channel accepts more; the rest waits in the viewer's queue,
    /// where frame skipping applies, until ``channelWritabilityChanged(context:)``.
    func deliver(context: ChannelHandlerContext) {
        guard case .serving(let viewer) = state else { return }
        var wrote = 0
        while context.channel.isWritable {
            guard let batch = viewer.take() else {
                logger.info("HTTP-FLV viewer ended: stream over")
                state = .done
                context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { [channel = context.channel] _ in
                    channel.close(promise: nil)
                }
                return
            }
            if batch.isEmpty { break }
            for f in batch {
                let tag = f.flvTag
                wrote += tag.readableBytes
                context.write(wrapOutboundOut(.body(tag)), promise: nil)
            }
        }
        if wrote > 0 {
            metrics.bytesSent.increment(by: wrote)
            context.flush()
        }
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
