import Foundation
@testable import ICE
import Logging
import Metrics
import NIOCore
import Prometheus
import Testing
import TestSupport
@testable import Server

/// `DatagramWriter`'s segmented sends (UDP GSO): a run of datagrams to one destination, equal in length but a shorter
/// last one, leaves as one message and arrives as the datagrams it was made of, in order, byte for byte; anything
/// else breaks the run. A kernel that refuses a segmented message gets its datagrams one by one, and no more
/// segmented messages. Loopback only.
@Suite(.serialized, .timeLimit(.minutes(1))) struct DatagramSegmentationTests {
    /// A UDP socket on 127.0.0.1 that reads with a deadline.
    struct Receiver {
        let fd: CInt
        let port: Int

        init() throws {
            let fd = socket(AF_INET, CInt(SOCK_DGRAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue), 0)
            guard fd >= 0 else { throw TestFailure("socket: \(errno)") }
            var big: CInt = 8 << 20
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, socklen_t(MemoryLayout<CInt>.size))
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0 else { throw TestFailure("bind: \(errno)") }
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            }
            self.fd = fd
            port = Int(UInt16(bigEndian: address.sin_port))
        }

        var address: SocketAddress { try! SocketAddress(ipAddress: "127.0.0.1", port: port) }

        /// The next `count` datagrams, or what came within `timeout`.
        func read(_ count: Int, timeout: Duration = .seconds(2)) async throws -> [[UInt8]] {
            var out: [[UInt8]] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            let deadline = ContinuousClock.now + timeout
            while out.count < count && ContinuousClock.now < deadline {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n >= 0 {
                    out.append(Array(buffer[0..<n]))
                } else {
                    try await Task.sleep(for: .milliseconds(2))
                }
            }
            return out
        }

        /// Whether a datagram waits to be read, now.
        var hasDatagram: Bool {
            var byte: UInt8 = 0
            return recv(fd, &byte, 1, CInt(MSG_PEEK | MSG_DONTWAIT)) >= 0
        }

        func close() { _ = Glibc.close(fd) }
    }

    /// A writer on a socket of its own (`fd`), counting its segmented datagrams where ``segmented`` reads them.
    struct Writer {
        let fd: CInt
        let writer: DatagramWriter
        let metrics: ReadableMetricsFactory

        init(segmentation: Bool) throws {
            metrics = ReadableMetricsFactory(base: PrometheusMetricsFactory(registry: PrometheusCollectorRegistry()))
            (fd, writer) = try DatagramWriter.bound(host: "127.0.0.1", port: 0, listener: true, what: "test socket",
                                                    segmentation: segmentation ? Counter(label: "segmented", factory: metrics) : nil,
                                                    logger: Logger(label: "test"), refused: Counter(label: "refused", factory: metrics))
        }

        /// Datagrams sent inside segmented messages so far.
        var segmented: Int { metrics.total("segmented") }

        func close() {
            writer.close()
            _ = Glibc.close(fd)
        }
    }

    /// A datagram of `length` bytes that says which it is: its number in the first two bytes, then a pattern of it.
    static func datagram(_ n: Int, length: Int) -> [UInt8] {
        (0..<length).map { i in i == 0 ? UInt8(n >> 8) : i == 1 ? UInt8(n & 0xFF) : UInt8(truncatingIfNeeded: n &* 31 &+ i) }
    }

    /// What a bridged viewer's frames and an SFU fan-out hand the writer, to two destinations.
    /// - To A: a STAP-A (short, alone: the next is longer), a keyframe's 26 FU-A fragments of 1228 bytes and its
    ///   shorter last one (one run of 27), 70 more of 1228 (cut at 60,000 bytes: runs of 48 and 22).
    /// - To B: 5 of 1000 (a run), then 1100 to A and to B alternately (no runs, but B's last and a shorter 500
    ///   after it make one), then 900 twice (longer than the 500 ended that run: a run of their own).
    static func batch(a: SocketAddress, b: SocketAddress) -> (datagrams: [(SocketAddress, [UInt8])], segmented: Int) {
        var out: [(SocketAddress, [UInt8])] = []
        var n = 0
        func add(_ to: SocketAddress, _ length: Int) {
            out.append((to, datagram(n, length: length)))
            n += 1
        }
        add(a, 300)
        for _ in 0..<26 { add(a, 1228) }
        add(a, 700)
        for _ in 0..<70 { add(a, 1228) }
        for _ in 0..<5 { add(b, 1000) }
        for i in 0..<6 { add(i % 2 == 0 ? a : b, 1100) }
        add(b, 500)
        add(b, 900)
        add(b, 900)
        return (out, 27 + 48 + 22 + 5 + 2 + 2)
    }

    static func send(_ datagrams: [(SocketAddress, [UInt8])], with writer: DatagramWriter) {
        writer.send(datagrams.map { AddressedEnvelope(remoteAddress: $0.0, data: ByteBuffer(bytes: $0.1)) })
    }

    /// Checks that each receiver got exactly its datagrams, in order and byte for byte.
    static func expectArrived(_ datagrams: [(SocketAddress, [UInt8])], at receivers: [Receiver]) async throws {
        for r in receivers {
            let expected = datagrams.filter { $0.0 == r.address }.map { $0.1 }
            let got = try await r.read(expected.count)
            #expect(got.count == expected.count, "port \(r.port): \(got.count) of \(expected.count) datagrams")
            #expect(got.map(\.count) == expected.map(\.count), "port \(r.port): the datagrams' lengths")
            #expect(got == expected, "port \(r.port): the datagrams' bytes and order")
            let stray = try await r.read(1, timeout: .milliseconds(200))
            #expect(stray.isEmpty, "port \(r.port): no datagram more")
        }
    }

    /// Sends ``batch(a:b:)`` to two fresh receivers with `writer` and checks that each got exactly its datagrams;
    /// returns how many of them should have gone inside segmented messages.
    static func sendTheBatch(with writer: DatagramWriter) async throws -> Int {
        let a = try Receiver(), b = try Receiver()
        defer { a.close(); b.close() }
        let (datagrams, segmented) = batch(a: a.address, b: b.address)
        send(datagrams, with: writer)
        try await expectArrived(datagrams, at: [a, b])
        return segmented
    }

    @Test func runsToOneDestinationLeaveSegmentedAndArriveAsTheirDatagrams() async throws {
        let w = try Writer(segmentation: true)
        defer { w.close() }
        let segmented = try await Self.sendTheBatch(with: w.writer)
        #expect(w.segmented == segmented, "datagrams sent inside segmented messages")
        #expect(w.writer.segmentationRefused.load(ordering: .relaxed) == 0)
    }

    /// More datagrams than one `sendmmsg` takes (256): a run across the chunk's edge is cut there, and all arrive.
    @Test func aRunAcrossTheEdgeOfASendmmsgChunkArrives() async throws {
        let w = try Writer(segmentation: true)
        defer { w.close() }
        let a = try Receiver()
        defer { a.close() }
        let datagrams = (0..<300).map { (a.address, Self.datagram($0, length: $0 == 299 ? 100 : 1000)) }
        Self.send(datagrams, with: w.writer)
        try await Self.expectArrived(datagrams, at: [a])
        #expect(w.segmented == 300)
    }

    @Test func withoutSegmentationEveryDatagramLeavesAlone() async throws {
        let w = try Writer(segmentation: false)
        defer { w.close() }
        _ = try await Self.sendTheBatch(with: w.writer)
        #expect(w.segmented == 0)
    }

    /// Linux refuses a segmented message from a socket that sends without UDP checksums (SO_NO_CHECK: EINVAL), as it
    /// does where the device cannot checksum (EIO) or a segment exceeds its MTU (EINVAL); plain datagrams still go.
    /// The refused run goes again one by one, and the writer stops segmenting.
    @Test func aRefusedSegmentedMessageGoesAgainOneByOne() async throws {
        let w = try Writer(segmentation: true)
        defer { w.close() }
        var one: CInt = 1
        let SO_NO_CHECK: CInt = 11
        #expect(setsockopt(w.fd, SOL_SOCKET, SO_NO_CHECK, &one, socklen_t(MemoryLayout<CInt>.size)) == 0)
        _ = try await Self.sendTheBatch(with: w.writer)
        #expect(w.writer.segmentationRefused.load(ordering: .relaxed) == 1, "one refusal turns segmentation off")
        #expect(w.segmented == 0)
        _ = try await Self.sendTheBatch(with: w.writer)
        #expect(w.writer.segmentationRefused.load(ordering: .relaxed) == 1, "no segmented message tried again")
    }

    /// A flush groups the queued datagrams by the destination they were queued for, each destination's order
    /// kept, destinations in the order they first appear; datagrams queued alone stay where they are.
    @Test func aFlushGroupsDatagramsByDestination() {
        let alone = DatagramWriter.alone
        #expect(DatagramWriter.grouped([0, 1, 2, 3, 4, 5], by: [7, 8, 9, 7, 8, 9]) == [0, 3, 1, 4, 2, 5])
        #expect(DatagramWriter.grouped([0, 1, 2, 3, 4, 5, 6], by: [alone, 7, 8, alone, 8, 7, 7]) == [0, 1, 5, 6, 2, 4, 3])
        #expect(DatagramWriter.grouped([0, 1, 2], by: [1, 2, 3]) == [0, 1, 2])
        #expect(DatagramWriter.grouped([Int](), by: []) == [])
    }

    /// While a thread holds the writer (the media port's read burst), that thread's fan-outs do not flush: the
    /// burst's datagrams leave at ``DatagramWriter/release()``, each viewer's as one segmented run. Another thread's
    /// fan-out (an ICE-TCP publisher's) flushes at once, and so does a held one once ``DatagramWriter/heldLimit``
    /// datagrams wait.
    @Test func aHeldReadBurstFlushesAtItsEndWithEachDestinationsDatagramsTogether() async throws {
        let w = try Writer(segmentation: true)
        defer { w.close() }
        let a = try Receiver(), b = try Receiver()
        defer { a.close(); b.close() }
        // Two publisher packets of a burst, each fanned out to A then B.
        let burst = (0..<4).map { (($0 % 2 == 0 ? a : b).address, Self.datagram($0, length: 1000)) }
        func queue(_ datagrams: [(SocketAddress, [UInt8])]) {
            for (to, bytes) in datagrams {
                w.writer.enqueue(AddressedEnvelope(remoteAddress: to, data: ByteBuffer(bytes: bytes)), destination: UInt64(to.port!))
            }
        }
        w.writer.hold()
        queue(burst)
        w.writer.flushUnlessHeld()
        #expect(try await a.read(1, timeout: .milliseconds(200)).isEmpty, "nothing leaves inside the burst")
        w.writer.release()
        try await Self.expectArrived(burst, at: [a, b])
        #expect(w.segmented == 4, "A's two and B's two left as one segmented message each")

        // Held by this thread; a fan-out on another thread flushes what is queued.
        w.writer.hold()
        queue(burst)
        let other = Thread { w.writer.flushUnlessHeld() }
        other.start()
        try await Self.expectArrived(burst, at: [a, b])
        // Held (on this thread, with no suspension in between: loopback delivers inside the send), up to the limit:
        // a fan-out holds; past it, it flushes anyway.
        let many = (0..<DatagramWriter.heldLimit).map { (a.address, Self.datagram($0, length: 100)) }
        w.writer.hold()
        queue(Array(many.dropLast()))
        w.writer.flushUnlessHeld()
        let heldBack = !a.hasDatagram
        queue(Array(many.suffix(1)))
        w.writer.flushUnlessHeld()
        let flushed = a.hasDatagram
        w.writer.release()
        #expect(heldBack, "\(DatagramWriter.heldLimit - 1) datagrams are held")
        #expect(flushed, "\(DatagramWriter.heldLimit) are flushed")
        try await Self.expectArrived(many, at: [a])
    }
}
