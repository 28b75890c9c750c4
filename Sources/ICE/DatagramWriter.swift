#if canImport(Glibc)
import Glibc
#endif
import CDatagram
import Logging
import Metrics
import NIOCore
import NIOPosix
import Locks

/// Sends a shared UDP socket's datagrams itself, with `sendmmsg` on its own duplicate of the socket, from whichever
/// thread has them; swift-nio's channel on the same socket only reads.
///
/// Why not the channel's writes: swift-nio closes a datagram channel when a send fails with any error but EMSGSIZE
/// and EHOSTUNREACH, and Linux fails a send with EPERM when a firewall rule drops the packet on its way out
/// (nftables or iptables, a full conntrack table), with ENETUNREACH or EADDRNOTAVAIL when a route or an address goes
/// away. On the media port that closed the socket every session shares, and the server with it, because one
/// datagram to one peer was refused (`RefusedSendTests`). Here a refused datagram is dropped alone, as the network
/// would drop it, counted in `refused` and logged (one warning every 10 s at most, with the last error and
/// destination); the datagrams after it in the batch still go. A full send buffer (EAGAIN: the network card has not
/// sent what came before) is waited on, up to ``sendBufferWait`` per call, as swift-nio would wait for the socket to
/// be writable; what still does not fit is dropped the same way, since real-time media is not worth more delay.
///
/// A writer made with `segmentation` sends each run of consecutive datagrams to one destination, all of one length
/// but a shorter last one (a bridged viewer's frame: its FU-A fragments), as one segmented message (UDP GSO,
/// `UDP_SEGMENT`): the kernel's UDP and IP output runs once per run instead of once per datagram, and each datagram
/// is still a datagram of its own on the wire. If the kernel refuses a segmented message (EIO: the outgoing device
/// cannot compute UDP checksums; EINVAL: a segment does not fit the device's MTU, or checksums are off on the
/// socket), its datagrams go again one by one and the writer sends every datagram alone from then on, with one
/// warning saying why.
///
/// A fan-out queues one datagram per viewer and publisher packet. While the socket's event loop reads a burst of
/// datagrams (``hold()`` ... ``release()``), the fan-outs it runs do not flush (``flushUnlessHeld()``): the burst's
/// datagrams leave together when it ends, grouped by destination (each destination's order kept), so that a
/// publisher's burst (a frame's packets, a keyframe) reaches each viewer as one segmented run. A fan-out on any other
/// thread, or on the loop outside a read burst (an ICE-TCP publisher), flushes itself; so does a held one once
/// ``heldLimit`` datagrams wait, which bounds what the first of them waits for.
final class DatagramWriter: Sendable {
    /// Datagrams per `sendmmsg` call.
    static let chunk = Int(LS_SENDMMSG_MAX)
    /// How long one call waits, in all, for room in a full send buffer (a thousand viewers' datagrams of a frame are
    /// over a megabyte: about 10 ms of a gigabit link, and more than Linux's default send buffer).
    static let sendBufferWait = 20
    /// The send buffer asked for (Linux caps it at twice `net.core.wmem_max`).
    static let sendBuffer: CInt = 4 << 20

    private let fd: CInt
    /// Calls using the descriptor, plus `closing` once ``close()`` was called: the last one out closes it, so that
    /// a send never reaches a descriptor number the process has reused.
    private let users = Atomic<Int>(0)
    private let closed = Atomic<Bool>(false)
    private let closeRequested = Atomic<Bool>(false)
    private static let closing = 1 << 40
    private let pending = Mutex<Pending>(Pending())
    /// Queued datagrams, and the destination each was queued for (``alone``: not grouped with any other).
    struct Pending {
        var datagrams: [AddressedEnvelope<ByteBuffer>] = []
        var destinations: [UInt64] = []
        /// The first destination queued, and whether it came again: fan-outs go through their viewers in the same
        /// order, so a batch with one fan-out (nothing to group) is told from one with several without a lookup.
        var first = alone
        var repeated = false

        mutating func append(_ datagram: AddressedEnvelope<ByteBuffer>, _ destination: UInt64) {
            datagrams.append(datagram)
            destinations.append(destination)
            if destination != alone {
                if first == alone { first = destination } else if first == destination { repeated = true }
            }
        }
    }
    /// A datagram queued without a destination key.
    static let alone = UInt64.max
    /// The thread whose read burst holds fan-outs' flushes back (``hold()``), 0 when none.
    private let holder = Atomic<UInt>(0)
    /// Queued datagrams past which a held fan-out flushes anyway: at about 5 µs a datagram, the first of them waits
    /// no more than some 5 ms.
    static let heldLimit = 1024
    private let what: String
    private let logger: Logger
    private let refused: Counter
    /// Refused since the last warning, and when the last warning was.
    private let refusals = Mutex<(count: Int, warned: ContinuousClock.Instant?)>((0, nil))
    /// Whether runs to one destination leave as segmented messages (off for good once the kernel refused one).
    private let segmenting: Atomic<Bool>
    /// Segmented messages the kernel refused.
    let segmentationRefused = Atomic<Int>(0)
    /// Where the datagrams sent inside segmented messages are counted (`liveswarm_rtc_segmented_datagrams_total`).
    private let segmented: Counter?

    /// Sends on a duplicate of `socket` (the caller keeps, and closes, its own descriptor); `what` names the socket
    /// in the log ("media port").
    /// `segmentation`, when given, turns segmented sends on and counts the datagrams they carry.
    init(duplicating socket: CInt, what: String, segmentation: Counter? = nil, logger: Logger, refused: Counter) throws {
        let copy = dup(socket)
        guard copy >= 0 else { throw IOError(errnoCode: errno, reason: "dup") }
        fd = copy
        segmenting = Atomic(segmentation != nil)
        segmented = segmentation
        self.what = what
        self.logger = logger
        self.refused = refused
    }

    /// Datagrams the kernel refused in one call: counted, and a warning at most every 10 s (how many since the last
    /// one, and the last one's error and destination).
    private func onRefused(_ count: Int, error: CInt, to: SocketAddress) {
        refused.increment(by: Int64(count))
        let now = ContinuousClock.now
        let report = refusals.withLock { r -> Int? in
            r.count += count
            if let warned = r.warned, now - warned < .seconds(10) { return nil }
            defer { (r.count, r.warned) = (0, now) }
            return r.count
        }
        guard let report else { return }
        logger.warning("\(what): the kernel refused to send \(report) datagram(s), dropped (a firewall rule, a route gone, or a full send buffer)",
                       metadata: ["error": "\(String(cString: strerror(error))) (errno \(error))", "to": "\(to)"])
    }

    /// The kernel refused a segmented message: segmentation ends for this writer, with one warning.
    private func segmentationRefused(_ error: CInt, to: SocketAddress) {
        segmentationRefused.wrappingAdd(1, ordering: .relaxed)
        guard segmenting.compareExchange(expected: true, desired: false, ordering: .relaxed).exchanged else { return }
        logger.warning("\(what): the kernel refused a segmented (GSO) message; sending every datagram alone from now on",
                       metadata: ["error": "\(String(cString: strerror(error))) (errno \(error))", "to": "\(to)"])
    }

    /// What one ``send(_:)`` call had refused so far: reported once, when it ends.
    private struct Refused {
        var count = 0
        var error: CInt = 0
        var to: SocketAddress?

        mutating func add(_ n: Int, _ error: CInt, _ to: SocketAddress) {
            (count, self.error, self.to) = (count + n, error, to)
        }
    }

    deinit {
        if !closed.load(ordering: .relaxed) { _ = Glibc.close(fd) }
    }

    /// A socket bound as ``bindSocket(host:port:listener:)`` binds it, for swift-nio's `withBoundSocket`, and a writer
    /// on a duplicate of it.
    static func bound(host: String, port: Int, listener: Bool = true, what: String, segmentation: Counter? = nil, logger: Logger,
                      refused: Counter) throws -> (socket: CInt, writer: DatagramWriter) {
        let fd = try bindSocket(host: host, port: port, listener: listener)
        do {
            return (fd, try DatagramWriter(duplicating: fd, what: what, segmentation: segmentation, logger: logger, refused: refused))
        } catch {
            _ = Glibc.close(fd)
            throw error
        }
    }

    /// A shared listener: the socket bound and batched for reading (`DatagramBootstrap.batched`), its channel
    /// holding the one handler `handler` makes (given the writer), and the writer that sends on it; on failure
    /// both are closed again.
    static func listen(group: any EventLoopGroup, host: String, port: Int, receiveBuffer: Int32, what: String,
                       segmentation: Counter? = nil, logger: Logger, refused: Counter,
                       handler: @escaping @Sendable (DatagramWriter) -> any ChannelHandler & Sendable)
        async throws -> (channel: any Channel, writer: DatagramWriter) {
        let (fd, writer) = try bound(host: host, port: port, what: what, segmentation: segmentation, logger: logger, refused: refused)
        do {
            let channel = try await DatagramBootstrap.batched(group: group, receiveBuffer: receiveBuffer)
                .withBoundSocket(fd) { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler(writer)) }
                }.get()
            return (channel, writer)
        } catch {
            writer.close()
            throw error
        }
    }

    /// A UDP socket bound to `host` (an address, or a name resolved now) and `port`, non-blocking, for swift-nio's
    /// `withBoundSocket` (which takes it over) and a writer's duplicate. A listener sets SO_REUSEADDR and asks for a
    /// large send buffer; a TURN relay does neither (a port is one allocation's alone).
    static func bindSocket(host: String, port: Int, listener: Bool = true) throws -> CInt {
        let address = try (try? SocketAddress(ipAddress: host, port: port)) ?? SocketAddress.makeAddressResolvingHost(host, port: port)
        let family: CInt = address.protocol == .inet6 ? AF_INET6 : AF_INET
        let fd = socket(family, CInt(SOCK_DGRAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        var one: CInt = 1, buffer = sendBuffer
        guard !listener || (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size)) == 0
                            && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer, socklen_t(MemoryLayout<CInt>.size)) == 0) else {
            let e = errno
            _ = Glibc.close(fd)
            throw IOError(errnoCode: e, reason: "setsockopt")
        }
        let bound = address.withSockAddr { sa, length in Glibc.bind(fd, sa, socklen_t(length)) }
        guard bound == 0 else {
            let e = errno
            _ = Glibc.close(fd)
            throw IOError(errnoCode: e, reason: "bind(\(host):\(port))")
        }
        return fd
    }

    /// Queues a datagram for the next ``flush()`` (from any thread: a fan-out's datagrams leave in one call).
    /// `destination` (a session's number) groups it, at the flush, with the others queued for the same one.
    func enqueue(_ datagram: AddressedEnvelope<ByteBuffer>, destination: UInt64 = alone) {
        pending.withLock { $0.append(datagram, destination) }
    }

    private static var currentThread: UInt { UInt(bitPattern: Int(bitPattern: pthread_self())) }

    /// The calling thread (the socket's event loop) begins, or goes on with, a read burst: fan-outs it runs until
    /// ``release()`` leave their datagrams queued.
    func hold() {
        holder.store(Self.currentThread, ordering: .relaxed)
    }

    /// The read burst ended: everything queued leaves now.
    func release() {
        holder.store(0, ordering: .relaxed)
        flush()
    }

    /// A fan-out's flush: skipped inside the calling thread's read burst (its end flushes) unless ``heldLimit``
    /// datagrams already wait.
    func flushUnlessHeld() {
        if holder.load(ordering: .relaxed) == Self.currentThread,
           pending.withLock({ $0.datagrams.count }) < Self.heldLimit { return }
        flush()
    }

    /// Sends what is queued (whoever queued it), grouped by destination when segmenting.
    func flush() {
        let (batch, destinations) = pending.withLock { p -> ([AddressedEnvelope<ByteBuffer>], [UInt64]?) in
            guard !p.datagrams.isEmpty else { return ([], nil) }
            defer {
                p.datagrams.removeAll(keepingCapacity: true)
                p.destinations.removeAll(keepingCapacity: true)
                (p.first, p.repeated) = (Self.alone, false)
            }
            return (p.datagrams, p.repeated ? p.destinations : nil)
        }
        guard let destinations, segmenting.load(ordering: .relaxed) else { return send(batch) }
        send(Self.grouped(batch, by: destinations))
    }

    /// `datagrams` with those of one destination together, destinations in the order they first appear and each
    /// one's datagrams in their order; a datagram queued ``alone`` stays where it first appears, by itself.
    static func grouped<T>(_ datagrams: [T], by destinations: [UInt64]) -> [T] {
        precondition(datagrams.count == destinations.count)
        let n = datagrams.count
        var last: [UInt64: Int] = [:]
        last.reserveCapacity(n)
        var next = [Int](repeating: -1, count: n)
        var heads: [Int] = []
        heads.reserveCapacity(n)
        for i in 0..<n {
            let d = destinations[i]
            if d != alone, let previous = last.updateValue(i, forKey: d) {
                next[previous] = i
            } else {
                heads.append(i)
            }
        }
        guard heads.count < n else { return datagrams }
        var out: [T] = []
        out.reserveCapacity(n)
        for head in heads {
            var i = head
            while i >= 0 {
                out.append(datagrams[i])
                i = next[i]
            }
        }
        return out
    }

    /// Sends `datagrams` now, in order; a datagram the kernel refuses is dropped and reported, the rest still go.
    func send(_ datagrams: [AddressedEnvelope<ByteBuffer>]) {
        guard !datagrams.isEmpty else { return }
        guard enter() else { return }
        defer { leave() }
        var start = 0
        var wait = Self.sendBufferWait
        var refused = Refused()
        while start < datagrams.count {
            let end = min(datagrams.count, start + Self.chunk)
            start = sendChunk(datagrams, start..<end, wait: &wait, refused: &refused)
        }
        if refused.count > 0, let to = refused.to { onRefused(refused.count, error: refused.error, to: to) }
    }

    /// Stops sending; the descriptor is closed once no call is using it.
    func close() {
        guard closeRequested.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        if users.wrappingAdd(Self.closing, ordering: .acquiringAndReleasing).newValue == Self.closing { closeOnce() }
    }

    private func enter() -> Bool {
        if users.wrappingAdd(1, ordering: .acquiring).newValue >= Self.closing {
            leave()
            return false
        }
        return true
    }

    private func leave() {
        if users.wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue == Self.closing { closeOnce() }
    }

    private func closeOnce() {
        if closed.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged { _ = Glibc.close(fd) }
    }

    /// One `sendmmsg` batch (more calls if the kernel stops early); returns where the next chunk starts. The
    /// buffers' bytes stay valid for the call: `datagrams` holds the buffers and nothing writes to them meanwhile.
    private func sendChunk(_ datagrams: [AddressedEnvelope<ByteBuffer>], _ range: Range<Int>, wait: inout Int, refused: inout Refused) -> Int {
        let n = range.count
        return withUnsafeTemporaryAllocation(of: ls_datagram.self, capacity: n) { list in
            withUnsafeTemporaryAllocation(of: sockaddr_storage.self, capacity: n) { addresses in
                for (slot, i) in range.enumerated() {
                    let d = datagrams[i]
                    let (base, count) = d.data.withUnsafeReadableBytes { ($0.baseAddress, $0.count) }
                    let to = UnsafeMutableRawPointer(addresses.baseAddress! + slot)
                    let length = d.remoteAddress.withSockAddr { sa, length in
                        to.copyMemory(from: sa, byteCount: length)
                        return length
                    }
                    list[slot] = ls_datagram(bytes: base, length: count, to: to.assumingMemoryBound(to: sockaddr.self),
                                             to_length: socklen_t(length))
                }
                var done = 0
                // Datagrams before this one go one by one: the segmented message holding them was refused.
                var aloneUntil = 0
                while done < n {
                    var error: CInt = 0
                    var failed: UInt32 = 0
                    var segmented: UInt32 = 0
                    let alone = done < aloneUntil
                    let segment = !alone && segmenting.load(ordering: .relaxed)
                    done += Int(ls_sendmmsg(fd, list.baseAddress! + done, UInt32((alone ? aloneUntil : n) - done), segment ? 1 : 0,
                                            &error, &failed, &segmented))
                    if segmented > 0 { self.segmented?.increment(by: Int64(segmented)) }
                    if error == 0 { continue }
                    if failed > 1 && (error == EIO || error == EINVAL) {
                        // The kernel does not take segmented messages on this path: this run goes again datagram by
                        // datagram, and so does everything after it.
                        aloneUntil = done + Int(failed)
                        segmentationRefused(error, to: datagrams[range.lowerBound + done].remoteAddress)
                        continue
                    }
                    if error == EAGAIN || error == EWOULDBLOCK {
                        // The send buffer is full: wait for room (what is left of this call's budget), else drop the
                        // rest of this chunk.
                        let started = ContinuousClock.now
                        var ready = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                        if wait > 0, poll(&ready, 1, CInt(wait)) == 1 {
                            wait -= max(1, Int(((ContinuousClock.now - started) / .milliseconds(1)).rounded(.up)))
                            continue
                        }
                        wait = 0
                        refused.add(n - done, error, datagrams[range.upperBound - 1].remoteAddress)
                        return range.upperBound
                    }
                    // This datagram (or segmented run) was refused; the ones after it go on.
                    refused.add(Int(failed), error, datagrams[range.lowerBound + done].remoteAddress)
                    done += Int(failed)
                }
                return range.upperBound
            }
        }
    }
}
