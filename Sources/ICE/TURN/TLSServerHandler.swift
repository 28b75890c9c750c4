import DTLS
import Logging
import NIOCore

/// TLS for a TURN client's connection (`turns:`, RFC 8656 3.1): ciphertext from the socket in, plaintext to the
/// STUN/ChannelData framer; plaintext written by the server out as ciphertext. A connection whose handshake is not
/// done within `handshakeTimeout` is closed, so that half-open connections cannot hold sockets.
final class TLSServerHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let connection: TLSConnection
    let logger: Logger
    let handshakeTimeout: TimeAmount
    var timer: Scheduled<Void>?

    init(connection: TLSConnection, logger: Logger, handshakeTimeout: TimeAmount = .seconds(10)) {
        (self.connection, self.logger, self.handshakeTimeout) = (connection, logger, handshakeTimeout)
    }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: handshakeTimeout) { [connection, logger] in
            guard !connection.isEstablished else { return }
            logger.debug("TURN over TLS: no handshake in time", metadata: ["remote": "\(channel.remoteAddress.map { "\($0)" } ?? "?")"])
            channel.close(promise: nil)
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data).readableBytesView
        let read: TLSConnection.Read
        do { read = try connection.receive(bytes) } catch {
            logger.debug("TURN over TLS: closed", metadata: ["remote": "\(context.remoteAddress.map { "\($0)" } ?? "?")", "error": "\(error)"])
            flushOutput(context)
            context.close(promise: nil)
            return
        }
        flushOutput(context)
        switch read {
        case .data(let plaintext) where !plaintext.isEmpty:
            context.fireChannelRead(wrapInboundOut(context.channel.allocator.buffer(bytes: plaintext)))
        case .data:
            break
        case .closed:
            connection.shutdown()
            flushOutput(context)
            context.close(promise: nil)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let plaintext = unwrapOutboundIn(data)
        do { try connection.write(plaintext.readableBytesView) } catch {
            promise?.fail(error)
            context.close(promise: nil)
            return
        }
        let out = connection.takeOutput()
        context.write(wrapOutboundOut(context.channel.allocator.buffer(bytes: out)), promise: promise)
    }

    /// Handshake answers and alerts, at once.
    func flushOutput(_ context: ChannelHandlerContext) {
        let out = connection.takeOutput()
        guard !out.isEmpty else { return }
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: out)), promise: nil)
    }
}
