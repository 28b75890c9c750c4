#if canImport(Glibc)
import Glibc
#endif
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

extension DatagramBootstrap {
    /// A UDP socket tuned for many small datagrams: `recvmmsg` reads up to 32 per call (the handler flushes
    /// its replies once per read burst, in `channelReadComplete`), with 2 KiB of receive buffer for each (recvmmsg
    /// splits the buffer evenly; the default would leave 64 bytes each and cut larger datagrams), 8 reads per
    /// wake-up, and a kernel buffer of `receiveBuffer` bytes for bursts.
    static func batched(group: any EventLoopGroup, receiveBuffer: Int32) -> DatagramBootstrap {
        DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.datagramVectorReadMessageCount, value: 32)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 32 * 2048))
            .channelOption(.maxMessagesPerRead, value: 8)
            .channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBuffer))
    }

    /// `channelInitializer(initialize)` and `withBoundSocket(socket)`, which hands the descriptor to the channel; if
    /// that fails, the channel (when one was made) or else the descriptor is closed. swift-nio's DatagramBootstrap
    /// leaves a channel whose setup failed open, unlike ServerBootstrap, and with it the handlers the initializer
    /// added and whatever they hold (a TURN relay's handler held the whole TURN endpoint: a relay port found taken
    /// leaked the server). The sockets are bound before (`DatagramWriter.bindSocket`), so a port in use fails there.
    func withBoundSocket(_ socket: CInt, initializing initialize: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>)
        -> EventLoopFuture<any Channel> {
        let made = NIOLockedValueBox<(any Channel)?>(nil)
        let bound = channelInitializer { channel in
            made.withLockedValue { $0 = channel }
            return initialize(channel)
        }.withBoundSocket(socket)
        return bound.flatMapError { error in
            if let channel = made.withLockedValue({ $0 }) {
                channel.close(promise: nil)
            } else {
                _ = close(socket)
            }
            return bound.eventLoop.makeFailedFuture(error)
        }
    }
}
