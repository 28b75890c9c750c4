import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOHTTP1

/// How much of a request the HTTP port reads before it answers with an error and closes the connection.
public struct HTTPLimits: Sendable, Equatable {
    /// The request target (path and query), in bytes: longer is 414.
    public var maxURLBytes = 8 * 1024
    /// The request line and headers together (swift-nio's decoder also caps each field at this): more is 431.
    public var maxHeadBytes = 32 * 1024
    /// Header fields: more is 431.
    public var maxHeaderFields = 100
    /// A request body, whatever the route (the routes that read one cap it lower: 256 KiB for an SDP offer, 4 KiB
    /// for JSON): a larger `Content-Length`, or a chunked body that grows past it, is 413.
    public var maxBodyBytes = 1024 * 1024

    public init() {}
}

/// The HTTP port's child channel with ``HTTPLimitsHandler`` right after swift-nio's HTTP decoder, before the
/// WebSocket upgrade and Hummingbird: a request over a limit is answered (414, 431, 413) and its connection closed
/// before anything reads more of it, and a request swift-nio cannot parse gets a 400 and a close. Without it a
/// head over the decoder's limit left the connection open and unanswered.
struct LimitedChildChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base
    let limits: HTTPLimits
    let logger: Logger

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        base.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let pipeline = channel.pipeline.syncOperations
            let decoder = try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try pipeline.addHandler(HTTPLimitsHandler(limits: limits, logger: self.logger), position: .after(decoder))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// ``http1WebSocketUpgrade(configuration:shouldUpgrade:)`` with ``HTTPLimits`` enforced.
    static func limitedHTTP1WebSocketUpgrade(
        limits: HTTPLimits, logger: Logger, configuration: HTTP1WebSocketUpgradeChannel.Configuration,
        shouldUpgrade: @escaping @Sendable (HTTPRequest, any Channel, Logger) throws
            -> ShouldUpgradeResult<WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>>
    ) -> HTTPServerBuilder {
        var http1 = configuration.http1
        http1.httpDecoder = .init(maxHeaderFieldSize: limits.maxHeadBytes, maxHeaderListSize: limits.maxHeadBytes,
                                  maxHeaderFieldCount: limits.maxHeaderFields)
        let configuration = HTTP1WebSocketUpgradeChannel.Configuration(http1: http1, ws: configuration.ws)
        return HTTPServerBuilder { responder in
            LimitedChildChannel(base: HTTP1WebSocketUpgradeChannel(responder: responder, configuration: configuration,
                                                                   shouldUpgrade: shouldUpgrade),
                                limits: limits, logger: logger)
        }
    }
}

/// Reads swift-nio's parsed request parts and passes on only requests within ``HTTPLimits``. Once a request asks
/// for a WebSocket upgrade it steps aside: what follows on the connection is WebSocket frames.
final class HTTPLimitsHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let limits: HTTPLimits
    let logger: Logger
    /// Body bytes of the request being passed on.
    private var bodyBytes = 0
    /// An error was answered: nothing more is read.
    private var refused = false
    /// The connection asked for an upgrade: everything passes untouched.
    private var upgrading = false

    init(limits: HTTPLimits, logger: Logger) { (self.limits, self.logger) = (limits, logger) }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !upgrading else { return context.fireChannelRead(data) }
        guard !refused else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            bodyBytes = 0
            if head.uri.utf8.count > limits.maxURLBytes {
                return refuse(context, .uriTooLong, "the URL is over \(limits.maxURLBytes) bytes")
            }
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > limits.maxBodyBytes {
                return refuse(context, .payloadTooLarge, "the body is over \(limits.maxBodyBytes) bytes")
            }
            if head.headers.contains(name: "upgrade") { upgrading = true }
        case .body(let buffer):
            bodyBytes += buffer.readableBytes
            if bodyBytes > limits.maxBodyBytes {
                // The request is already with its route, which may be answering: the connection is closed.
                refused = true
                logger.debug("HTTP request body over the limit: connection closed", metadata: ["limit": "\(limits.maxBodyBytes)"])
                context.close(promise: nil)
                return
            }
        case .end:
            break
        }
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !upgrading else { return context.fireErrorCaught(error) }
        guard let parse = error as? HTTPParserError else { return context.fireErrorCaught(error) }
        if refused { return }
        if parse == .headerOverflow {
            refuse(context, .requestHeaderFieldsTooLarge,
                   "the request line and headers are over \(limits.maxHeadBytes) bytes or \(limits.maxHeaderFields) fields")
        } else {
            refuse(context, .badRequest, "not an HTTP/1.1 request (\(parse))")
        }
    }

    /// Answers `status` with `reason` as its text and closes the connection.
    private func refuse(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, _ reason: String) {
        refused = true
        logger.debug("HTTP request refused", metadata: ["status": "\(status.code)", "reason": "\(reason)",
                                                        "remote": "\(context.remoteAddress.map { "\($0)" } ?? "?")"])
        let body = context.channel.allocator.buffer(string: reason + "\n")
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
    }
}
