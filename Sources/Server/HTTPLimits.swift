import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Locks
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
    let rateLimiter: HTTPRateLimiter
    let logger: Logger

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        base.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let pipeline = channel.pipeline.syncOperations
            let decoder = try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try pipeline.addHandler(HTTPLimitsHandler(limits: limits, rateLimiter: rateLimiter, logger: self.logger), position: .after(decoder))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// ``http1WebSocketUpgrade(configuration:shouldUpgrade:)`` with ``HTTPLimits`` and the rate limits enforced.
    static func limitedHTTP1WebSocketUpgrade(
        limits: HTTPLimits, rateLimiter: HTTPRateLimiter, logger: Logger, configuration: HTTP1WebSocketUpgradeChannel.Configuration,
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
                                limits: limits, rateLimiter: rateLimiter, logger: logger)
        }
    }
}

/// Reads swift-nio's parsed request parts and passes on only requests within ``HTTPLimits`` and the client's rate
/// limits (``HTTPRateLimiter``). Once a request asks for a WebSocket upgrade it steps aside: what follows on the
/// connection is WebSocket frames.
final class HTTPLimitsHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let limits: HTTPLimits
    let rateLimiter: HTTPRateLimiter
    let logger: Logger
    /// Body bytes of the request being passed on.
    private var bodyBytes = 0
    /// An error was answered: nothing more is read.
    private var refused = false
    /// The connection asked for an upgrade: everything passes untouched.
    private var upgrading = false

    init(limits: HTTPLimits, rateLimiter: HTTPRateLimiter, logger: Logger) {
        (self.limits, self.rateLimiter, self.logger) = (limits, rateLimiter, logger)
    }

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
            let upgrade = head.headers.contains(name: "upgrade")
            if let kind = HTTPRateLimits.kind(path: head.uri, upgrade: upgrade) {
                let client = rateLimiter.client(connection: context.remoteAddress?.ipAddress ?? "", forwardedFor: head.headers["x-forwarded-for"])
                if let wait = rateLimiter.take(kind, client: client) {
                    return refuse(context, .tooManyRequests, "over \(kind.rawValue) requests' rate limit for \(client)",
                                  headers: [("Retry-After", String(Int(wait.rounded(.up))))])
                }
            }
            if upgrade { upgrading = true }
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
    private func refuse(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, _ reason: String,
                        headers extra: [(String, String)] = []) {
        refused = true
        logger.debug("HTTP request refused", metadata: ["status": "\(status.code)", "reason": "\(reason)",
                                                        "remote": "\(context.remoteAddress.map { "\($0)" } ?? "?")"])
        let body = context.channel.allocator.buffer(string: reason + "\n")
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        headers.add(name: "Connection", value: "close")
        for (name, value) in extra { headers.add(name: name, value: value) }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
    }
}

/// A token bucket's refill rate and depth; a rate of 0 turns it off.
public struct RateLimit: Sendable, Equatable {
    public var perSecond: Double
    public var burst: Double

    public init(perSecond: Double, burst: Double) { (self.perSecond, self.burst) = (perSecond, burst) }
    public static let off = RateLimit(perSecond: 0, burst: 0)
    public var isOff: Bool { perSecond <= 0 }
}

/// Requests per second from one client address, for three kinds of request: the JSON API (`/api/...`), WebRTC
/// sessions (`/whip/...`, `/whep/...`) and WebSocket upgrades (`/ws`, `/tracker`). Media (HTTP-FLV, HLS) and the
/// pages are not limited. Over its limit a request gets 429 with `Retry-After` and its connection is closed.
public struct HTTPRateLimits: Sendable, Equatable {
    public var api = RateLimit(perSecond: 100, burst: 300)
    public var webrtc = RateLimit(perSecond: 10, burst: 50)
    public var websocket = RateLimit(perSecond: 10, burst: 50)
    /// Reverse proxies (addresses or CIDR blocks) whose `X-Forwarded-For` names the client: the rightmost address
    /// in it that is not itself a trusted proxy. From anyone else the header is ignored.
    public var trustedProxies: [String] = []

    public init() {}

    public static var off: HTTPRateLimits {
        var l = HTTPRateLimits()
        (l.api, l.webrtc, l.websocket) = (.off, .off, .off)
        return l
    }

    enum Kind: String, Hashable { case api, webrtc, websocket }

    func limit(_ kind: Kind) -> RateLimit {
        switch kind {
        case .api: api
        case .webrtc: webrtc
        case .websocket: websocket
        }
    }

    /// Which limit a request for `target` (path and query) falls under, nil for none.
    static func kind(path target: String, upgrade: Bool) -> Kind? {
        let path = target.prefix { $0 != "?" }
        if path.hasPrefix("/api/") { return .api }
        if path.hasPrefix("/whip/") || path.hasPrefix("/whep/") { return .webrtc }
        if upgrade, path == "/ws" || path == "/tracker" { return .websocket }
        return nil
    }
}

/// An address or a CIDR block (`203.0.113.0/24`, `2001:db8::/32`); IPv4-mapped IPv6 addresses match as IPv4.
struct AddressBlock: Sendable, Equatable {
    let bytes: [UInt8]
    let prefix: Int

    /// Every block of `texts`; throws naming the first that is neither an address nor a CIDR block.
    static func blocks(_ texts: [String]) throws -> [AddressBlock] {
        try texts.map {
            guard let block = AddressBlock($0) else { throw HTTPRateLimitError(description: "\"\($0)\" is neither an address nor a CIDR block") }
            return block
        }
    }

    init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1)
        guard let address = parts.first.flatMap({ Self.bytes(String($0)) }) else { return nil }
        let bits = address.count * 8
        let prefix = parts.count == 2 ? Int(parts[1]) : bits
        guard let prefix, prefix >= 0, prefix <= bits else { return nil }
        (self.bytes, self.prefix) = (address, prefix)
    }

    /// The address's bytes (4 or 16; an IPv4-mapped IPv6 address gives its 4), nil if it is not an address.
    static func bytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        let b = withUnsafeBytes(of: &v6) { Array($0) }
        return b[0..<10].allSatisfy { $0 == 0 } && b[10] == 0xFF && b[11] == 0xFF ? Array(b[12...]) : b
    }

    func contains(_ address: [UInt8]) -> Bool {
        guard address.count == bytes.count else { return false }
        var left = prefix
        for i in bytes.indices where left > 0 {
            let n = min(8, left)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - n))
            if address[i] & mask != bytes[i] & mask { return false }
            left -= n
        }
        return true
    }
}

/// Token buckets per client address for each kind of request (``HTTPRateLimits``), shared by every connection
/// of the HTTP port.
public final class HTTPRateLimiter: Sendable {
    let limits: HTTPRateLimits
    let proxies: [AddressBlock]
    private struct Bucket {
        var tokens: Double
        var at: ContinuousClock.Instant
    }
    private struct Key: Hashable {
        var kind: HTTPRateLimits.Kind
        var client: String
    }
    private let buckets = Mutex<[Key: Bucket]>([:])
    /// Past this many addresses, full buckets (idle long enough to have refilled) are forgotten.
    static let maximumAddresses = 20_000

    /// Throws when a trusted proxy is neither an address nor a CIDR block.
    public init(_ limits: HTTPRateLimits) throws {
        self.limits = limits
        do { proxies = try AddressBlock.blocks(limits.trustedProxies) } catch { throw HTTPRateLimitError(description: "trusted proxy \(error)") }
    }

    /// The client's address: the connection's, or, from a trusted proxy, the rightmost address of
    /// `X-Forwarded-For` that is not a trusted proxy.
    func client(connection: String, forwardedFor: [String]) -> String {
        guard !proxies.isEmpty, let from = AddressBlock.bytes(connection), proxies.contains(where: { $0.contains(from) }) else {
            return connection
        }
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        for hop in hops.reversed() {
            guard let b = AddressBlock.bytes(hop) else { return connection }  // garbage: trust nothing in it
            if !proxies.contains(where: { $0.contains(b) }) { return hop }
        }
        return hops.first ?? connection
    }

    /// Takes a token for `client`'s requests of `kind`: nil when the request may go, else the seconds until it may.
    func take(_ kind: HTTPRateLimits.Kind, client: String, now: ContinuousClock.Instant = .now) -> Double? {
        let limit = limits.limit(kind)
        guard !limit.isOff else { return nil }
        let key = Key(kind: kind, client: client)
        return buckets.withLock { all -> Double? in
            if all.count >= Self.maximumAddresses { forgetFull(&all, now: now) }
            var b = all[key] ?? Bucket(tokens: limit.burst, at: now)
            b.tokens = min(limit.burst, b.tokens + (now - b.at) / .seconds(1) * limit.perSecond)
            b.at = now
            defer { all[key] = b }
            guard b.tokens >= 1 else { return (1 - b.tokens) / limit.perSecond }
            b.tokens -= 1
            return nil
        }
    }

    private func forgetFull(_ all: inout [Key: Bucket], now: ContinuousClock.Instant) {
        all = all.filter { key, b in
            let limit = limits.limit(key.kind)
            return b.tokens + (now - b.at) / .seconds(1) * limit.perSecond < limit.burst
        }
    }
}

struct HTTPRateLimitError: Error, CustomStringConvertible {
    let description: String
}
