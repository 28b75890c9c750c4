import NIOCore
import NIOPosix
import Locks

/// A loopback TCP client for raw protocol tests: bytes in, bytes out, optionally read slowly.
///
/// With `throttled`, the socket is read only when ``pump(reads:)`` is called, `readSize` bytes at a time,
/// with a small receive buffer: the kernel then pushes back on the server as a slow viewer's would.
final class TCPTestClient: Sendable {
    let channel: any Channel
    let inbox: Inbox

    /// What the socket delivered and not yet taken, and whoever is waiting for it.
    final class Inbox: Sendable {
        struct State {
            var chunks: [ByteBuffer] = []
            var closed = false
            var waiter: CheckedContinuation<Void, Never>?
        }
        let state = Mutex(State())

        func deliver(_ b: ByteBuffer?) {
            let w = state.withLock { s -> CheckedContinuation<Void, Never>? in
                if let b { s.chunks.append(b) } else { s.closed = true }
                defer { s.waiter = nil }
                return s.waiter
            }
            w?.resume()
        }

        /// The next bytes delivered; nil when closed, when nothing came within `timeout`, or when the task is cancelled.
        func next(timeout: Duration) async -> ByteBuffer? {
            let deadline = ContinuousClock.now + timeout
            while true {
                let (chunk, closed): (ByteBuffer?, Bool) = state.withLock { s in
                    s.chunks.isEmpty ? (nil, s.closed) : (s.chunks.removeFirst(), false)
                }
                if let chunk { return chunk }
                if closed || ContinuousClock.now >= deadline || Task.isCancelled { return nil }
                // Wakes the waiter at the deadline; a timer cancelled because data came first wakes nobody (a late
                // wake would end the next wait early, and that one's timer the one after: a busy loop).
                let timer = Task { [self] in
                    if (try? await Task.sleep(until: deadline)) != nil { wake() }
                }
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                        // The deadline and cancellation are checked under the lock that wake() takes: a wake that
                        // came before the waiter was stored would otherwise be lost, and the wait would never end.
                        let ready = state.withLock { s -> Bool in
                            if !s.chunks.isEmpty || s.closed || ContinuousClock.now >= deadline || Task.isCancelled { return true }
                            s.waiter = c
                            return false
                        }
                        if ready { c.resume() }
                    }
                } onCancel: {
                    wake()
                }
                timer.cancel()
            }
        }

        func wake() {
            state.withLock { s -> CheckedContinuation<Void, Never>? in
                defer { s.waiter = nil }
                return s.waiter
            }?.resume()
        }
    }

    final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let inbox: Inbox
        init(_ inbox: Inbox) { self.inbox = inbox }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { inbox.deliver(unwrapInboundIn(data)) }
        func channelInactive(context: ChannelHandlerContext) { inbox.deliver(nil) }
        func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
    }

    private init(channel: any Channel, inbox: Inbox) {
        self.channel = channel
        self.inbox = inbox
    }

    static func connect(port: Int, throttled: Bool = false, readSize: Int = 4096, receiveBuffer: Int32 = 4096) async throws -> TCPTestClient {
        let inbox = Inbox()
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
        if throttled {
            bootstrap = bootstrap
                .channelOption(.autoRead, value: false)
                .channelOption(.maxMessagesPerRead, value: 1)
                .channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBuffer))
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: readSize))
        }
        let channel = try await bootstrap
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(Collector(inbox)) }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return TCPTestClient(channel: channel, inbox: inbox)
    }

    func send(_ bytes: ByteBuffer) async throws {
        try await channel.writeAndFlush(bytes).get()
    }

    func send(_ string: String) async throws { try await send(ByteBuffer(string: string)) }

    /// For throttled clients: asks the socket for `reads` more reads.
    func pump(reads: Int = 1) {
        for _ in 0..<reads { channel.read() }
    }

    /// The next bytes received; nil when the connection closed, or nothing came within `timeout`
    /// (the connection stays open then).
    func receive(timeout: Duration = .seconds(5)) async -> ByteBuffer? {
        await inbox.next(timeout: timeout)
    }

    /// Whether the server closes the connection within `timeout`.
    func closesWithin(_ timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if !channel.isActive { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return !channel.isActive
    }

    func close() async {
        try? await channel.close().get()
    }
}
