import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// A plain `ws://` client for the tests and the benchmark (the server never uses it): swift-nio's own WebSocket
/// codec, so no TLS library is built for it. It answers pings and the server's close, gathers fragmented messages,
/// and masks what it sends, as RFC 6455 asks of a client.
public enum LoopbackWebSocket {
    public enum Message: Sendable, Equatable {
        case text(String)
        case binary([UInt8])
    }

    public enum ConnectError: Error, CustomStringConvertible {
        /// The server answered the upgrade with something other than 101.
        case refused(String)

        public var description: String {
            switch self {
            case .refused(let path): "the server refused the WebSocket upgrade of \(path)"
            }
        }
    }

    /// Connects to `ws://host:port/path`, runs `body` with the messages in and a writer out, and returns the close
    /// code the server sent (nil if the connection ended without a close frame, or with one that had no code).
    /// When `body` returns, the connection is closed (code 1000) unless the server closed it first.
    @discardableResult
    public static func connect(
        host: String = "127.0.0.1", port: Int, path: String, maxMessageSize: Int = 1 << 20,
        _ body: (Inbound, Outbound) async throws -> Void
    ) async throws -> UInt16? {
        enum Upgrade: Sendable {
            case upgraded(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>)
            case refused
        }
        let upgrade: EventLoopFuture<Upgrade> = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let upgrader = NIOTypedWebSocketClientUpgrader<Upgrade>(maxFrameSize: maxMessageSize) { channel, _ in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(NIOWebSocketFrameAggregator(
                                minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 1 << 16,
                                maxAccumulatedFrameSize: maxMessageSize))
                            return .upgraded(try NIOAsyncChannel(wrappingChannelSynchronously: channel))
                        }
                    }
                    var headers = HTTPHeaders()
                    headers.add(name: "Host", value: "\(host):\(port)")
                    headers.add(name: "Content-Length", value: "0")
                    let configuration = NIOTypedHTTPClientUpgradeConfiguration(
                        upgradeRequestHead: HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: headers),
                        upgraders: [upgrader],
                        notUpgradingCompletionHandler: { channel in
                            channel.close(promise: nil)
                            return channel.eventLoop.makeSucceededFuture(.refused)
                        })
                    return try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(
                        configuration: .init(upgradeConfiguration: configuration))
                }
            }
        guard case .upgraded(let channel) = try await upgrade.get() else { throw ConnectError.refused(path) }
        return try await channel.executeThenClose { inbound, outbound in
            let state = Closing()
            let out = Outbound(writer: outbound, state: state)
            try await body(Inbound(frames: inbound, outbound: out), out)
            if !(await state.sentClose) { try? await out.close() }
            return await state.receivedCode
        }
    }

    /// Who closed, and with what code.
    actor Closing {
        var sentClose = false
        var receivedCode: UInt16?

        /// True the first time only.
        func markSent() -> Bool {
            defer { sentClose = true }
            return !sentClose
        }

        func received(_ code: UInt16?) { receivedCode = code }
    }

    public struct Outbound: Sendable {
        let writer: NIOAsyncChannelOutboundWriter<WebSocketFrame>
        let state: Closing

        public func send(_ text: String) async throws {
            try await write(.text, ByteBuffer(string: text))
        }

        public func send(_ bytes: [UInt8]) async throws {
            try await write(.binary, ByteBuffer(bytes: bytes))
        }

        /// Sends a close frame (once; later calls do nothing). The server then ends the connection.
        public func close(code: UInt16 = 1000) async throws { try await sendClose(code) }

        /// No close frame will be sent: when the body returns, the TCP connection just ends, as when a client
        /// crashes or its network dies (tests of what a server does with a connection lost without a close).
        public func abandon() async { _ = await state.markSent() }

        /// A close frame with `code` (none: an empty one), unless one was sent already.
        func sendClose(_ code: UInt16?) async throws {
            guard await state.markSent() else { return }
            var payload = ByteBuffer()
            if let code { payload.writeInteger(code) }
            try await write(.connectionClose, payload)
        }

        func write(_ opcode: WebSocketOpcode, _ data: ByteBuffer) async throws {
            try await writer.write(WebSocketFrame(fin: true, opcode: opcode, maskKey: .random(), data: data))
        }
    }

    /// The server's messages, in order. It ends at the server's close frame (answered with the same code) or when
    /// the connection ends.
    public struct Inbound: AsyncSequence, Sendable {
        public typealias Element = Message
        let frames: NIOAsyncChannelInboundStream<WebSocketFrame>
        let outbound: Outbound

        public struct AsyncIterator: AsyncIteratorProtocol {
            var frames: NIOAsyncChannelInboundStream<WebSocketFrame>.AsyncIterator
            let outbound: Outbound
            var ended = false

            public mutating func next() async throws -> Message? {
                while !ended, let frame = try await frames.next() {
                    switch frame.opcode {
                    case .text: return .text(String(buffer: frame.unmaskedData))
                    case .binary: return .binary(Array(buffer: frame.unmaskedData))
                    case .ping: try await outbound.write(.pong, frame.unmaskedData)
                    case .connectionClose:
                        var data = frame.unmaskedData
                        let code = data.readInteger(as: UInt16.self)
                        await outbound.state.received(code)
                        try? await outbound.sendClose(code)
                        ended = true
                    default: continue
                    }
                }
                return nil
            }
        }

        public func makeAsyncIterator() -> AsyncIterator {
            AsyncIterator(frames: frames.makeAsyncIterator(), outbound: outbound)
        }
    }
}
