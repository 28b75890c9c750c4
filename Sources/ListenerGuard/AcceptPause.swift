#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import NIOPosix

/// On a listening socket: when `accept` fails because the process (EMFILE) or the system (ENFILE) has no file
/// descriptor left, or the kernel no memory (ENOBUFS, ENOMEM), the listener stops reading for ``pause`` and then
/// tries again; connections wait in the kernel's backlog meanwhile, and the ones already open go on.
///
/// Why: swift-nio leaves a listener whose `accept` failed registered for readability, and the connection waiting
/// in the backlog keeps it readable, so the event loop called `accept` again at once, over and over: 6,500 calls a
/// second and a whole core, starving every connection on that loop (found with a server limited to 128
/// descriptors; its own AcceptBackoffHandler does not stop that). Turning `autoRead` off takes the listener out of
/// the event loop's interest until the pause ends.
public final class AcceptPause: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = any Channel

    let what: String
    let logger: Logger
    let pause: TimeAmount
    private var paused = false
    /// Pauses since the last warning, and when that was.
    private var pauses = 0
    private var warned: NIODeadline?

    /// `what` names the listener in the log ("HTTP", "RTMP").
    public init(what: String, logger: Logger, pause: TimeAmount = .milliseconds(500)) {
        (self.what, self.logger, self.pause) = (what, logger, pause)
    }

    public static func isExhaustion(_ error: any Error) -> Bool {
        guard let io = error as? IOError else { return false }
        return [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(io.errnoCode)
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard Self.isExhaustion(error) else { return context.fireErrorCaught(error) }
        guard !paused else { return }
        paused = true
        pauses += 1
        try? context.channel.syncOptions?.setOption(.autoRead, value: false)
        let now = NIODeadline.now()
        if warned.map({ now - $0 >= .seconds(10) }) ?? true {
            logger.warning("\(what): cannot accept connections (\(error)); pausing accepts for \(pause.nanoseconds / 1_000_000) ms at a time, open connections go on",
                           metadata: ["pauses": "\(pauses)"])
            (warned, pauses) = (now, 0)
        }
        let channel = context.channel
        context.eventLoop.assumeIsolated().scheduleTask(in: pause) { [self] in
            paused = false
            try? channel.syncOptions?.setOption(.autoRead, value: true)
        }
    }
}

extension ServerBootstrap {
    /// A listener that pauses accepting while descriptors are exhausted (``AcceptPause``).
    public func pausingAcceptsWhenExhausted(what: String, logger: Logger) -> ServerBootstrap {
        serverChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(AcceptPause(what: what, logger: logger), position: .first)
            }
        }
    }
}

extension Channel {
    /// Puts ``AcceptPause`` first on a listener this code did not bootstrap (Hummingbird's).
    public func pauseAcceptsWhenExhausted(what: String, logger: Logger) {
        eventLoop.execute {
            try? self.pipeline.syncOperations.addHandler(AcceptPause(what: what, logger: logger), position: .first)
        }
    }
}
