#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import NIOCore
import NIOPosix

/// On a listening socket: when `accept` fails because the process (EMFILE) or the system (ENFILE) has no file
/// descriptor left, or the kernel no memory (ENOBUFS, ENOMEM), the connections waiting in the kernel's backlog are
/// refused (accepted with a descriptor kept in reserve for this, and reset at once: the client hears so at once
/// instead of waiting out its own timeout), the listener stops reading for ``pause`` and then tries again, and the
/// connections already open go on.
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
    /// The listener's own descriptor (found in /proc/self/fd once it is bound: swift-nio does not hand it out), and
    /// one kept open on /dev/null, given up for a moment to accept and refuse what waits; -1 where not found.
    private var listener: Int32 = -1
    private var reserve: Int32 = -1
    /// Connections refused since the last warning.
    private var refused = 0

    /// `what` names the listener in the log ("HTTP", "RTMP").
    public init(what: String, logger: Logger, pause: TimeAmount = .milliseconds(500)) {
        (self.what, self.logger, self.pause) = (what, logger, pause)
    }

    public static func isExhaustion(_ error: any Error) -> Bool {
        guard let io = error as? IOError else { return false }
        return [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(io.errnoCode)
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { prepare(context.channel) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        prepare(context.channel)
        context.fireChannelActive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        if reserve >= 0 { close(reserve) }
        (reserve, listener) = (-1, -1)
    }

    func prepare(_ channel: any Channel) {
        guard listener < 0, let address = channel.localAddress, let port = address.port else { return }
        listener = Self.listeningDescriptor(port: port)
        if listener >= 0 && reserve < 0 { reserve = open("/dev/null", O_RDONLY | O_CLOEXEC) }
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard Self.isExhaustion(error) else { return context.fireErrorCaught(error) }
        guard !paused else { return }
        paused = true
        pauses += 1
        refused += refuseWaiting()
        try? context.channel.syncOptions?.setOption(.autoRead, value: false)
        let now = NIODeadline.now()
        if warned.map({ now - $0 >= .seconds(10) }) ?? true {
            logger.warning("\(what): cannot accept connections (\(error)); refusing new ones and pausing accepts for \(pause.nanoseconds / 1_000_000) ms at a time, open connections go on",
                           metadata: ["pauses": "\(pauses)", "refused": "\(refused)"])
            (warned, pauses, refused) = (now, 0, 0)
        }
        let channel = context.channel
        context.eventLoop.assumeIsolated().scheduleTask(in: pause) { [self] in
            paused = false
            if listener >= 0 && reserve < 0 { reserve = open("/dev/null", O_RDONLY | O_CLOEXEC) }
            try? channel.syncOptions?.setOption(.autoRead, value: true)
        }
    }

    /// Gives up the reserve descriptor, accepts what waits in the backlog (256 at most) and resets each (SO_LINGER
    /// 0: the client gets a reset, not a connection that never answers), then takes the reserve again. Another
    /// thread may take the freed descriptor first: then nothing is refused, and the reserve is taken again when the
    /// pause ends. On the listener's event loop, which is the only one that accepts on it.
    func refuseWaiting() -> Int {
        guard listener >= 0, reserve >= 0 else { return 0 }
        close(reserve)
        reserve = -1
        var n = 0
        while n < 256 {
            // The listener is non-blocking (swift-nio's): an empty backlog is EAGAIN.
            let c = accept(listener, nil, nil)
            if c < 0 { break }
            var reset = linger(l_onoff: 1, l_linger: 0)
            setsockopt(c, SOL_SOCKET, SO_LINGER, &reset, socklen_t(MemoryLayout<linger>.size))
            close(c)
            n += 1
        }
        reserve = open("/dev/null", O_RDONLY | O_CLOEXEC)
        return n
    }

    /// This process's listening TCP socket on `port` (SO_ACCEPTCONN set, bound to that port), -1 if none.
    static func listeningDescriptor(port: Int) -> Int32 {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return -1 }
        for name in entries {
            guard let fd = Int32(name) else { continue }
            var accepting: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) == 0, accepting == 1 else { continue }
            var address = sockaddr_storage()
            var size = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let named = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &size) == 0 }
            }
            guard named else { continue }
            let bound: UInt16 = withUnsafePointer(to: &address) { p in
                switch Int32(p.pointee.ss_family) {
                case AF_INET: p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
                case AF_INET6: p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
                default: 0
                }
            }
            if Int(bound) == port { return fd }
        }
        return -1
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
