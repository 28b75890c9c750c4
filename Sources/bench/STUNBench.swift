import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import Locks

/// STUN Binding load: keeps `inflight` requests outstanding on each of `sockets` UDP sockets and sends a new
/// one for every response, for `seconds`. Prints responses per second and the server's CPU, so LiveSwarm and
/// coturn can be compared under the same client.
struct STUNLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stun")

    @Option(help: "Server host.") var host = "127.0.0.1"
    @Option(help: "Server UDP port.") var port = 3478
    @Option(help: "Server process id, for CPU (from /proc).") var pid: Int32
    @Option(help: "UDP sockets.") var sockets = 4
    @Option(help: "Requests outstanding per socket.") var inflight = 32
    @Option(help: "Seconds of measurement.") var seconds = 10
    @Option(help: "Label for the output line.") var label = "server"

    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try SocketAddress(ipAddress: host, port: port)
        let counter = ResponseCounter()
        var channels: [any Channel] = []
        for s in 0..<sockets {
            let handler = BindingPinger(server: server, counter: counter, socketIndex: UInt32(s))
            let ch = try await DatagramBootstrap(group: group)
                .channelOption(.socketOption(.so_rcvbuf), value: 1 << 20)
                .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(handler) } }
                .bind(host: "127.0.0.1", port: 0).get()
            channels.append(ch)
        }
        // Lost datagrams would shrink the window for good: top every socket up to `inflight` now and then.
        let all = channels
        let refill = Task {
            while !Task.isCancelled {
                for ch in all { ch.pipeline.fireUserInboundEventTriggered(BindingPinger.TopUp(count: inflight)) }
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
        try await Task.sleep(for: .seconds(2))
        counter.reset()
        let before = ProcStats.read(pid: pid)
        let start = ContinuousClock.now
        try await Task.sleep(for: .seconds(seconds))
        let elapsed = ContinuousClock.now - start
        let after = ProcStats.read(pid: pid)
        let answered = counter.value
        refill.cancel()
        for ch in channels { try? await ch.close() }
        try await group.shutdownGracefully()
        let rate = Double(answered) / (elapsed / .seconds(1))
        let cpu = after.cpuPercent(since: before)
        print("| \(label) | \(Int(rate)) | \(String(format: "%.0f", cpu)) | \(cpu > 0 ? String(Int(rate / cpu * 100)) : "-") |")
    }
}

final class ResponseCounter: Sendable {
    let count = Atomic<Int>(0)
    func add() { count.add(1, ordering: .relaxed) }
    func reset() { count.store(0, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}

/// Sends Binding requests (each with its own transaction id) and one more for every success response.
final class BindingPinger: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>
    struct TopUp { var count: Int }

    let server: SocketAddress
    let counter: ResponseCounter
    let socketIndex: UInt32
    let state = Mutex<(sent: UInt64, answered: UInt64, sentAtTopUp: UInt64)>((0, 0, 0))

    init(server: SocketAddress, counter: ResponseCounter, socketIndex: UInt32) {
        self.server = server
        self.counter = counter
        self.socketIndex = socketIndex
    }

    func request(_ n: UInt64, allocator: ByteBufferAllocator) -> ByteBuffer {
        var b = allocator.buffer(capacity: 20)
        b.writeInteger(UInt16(0x0001))
        b.writeInteger(UInt16(0))
        b.writeInteger(UInt32(0x2112_A442))
        b.writeInteger(socketIndex)
        b.writeInteger(n)
        return b
    }

    func send(_ context: ChannelHandlerContext, count: Int) {
        for _ in 0..<count {
            let n = state.withLock { s -> UInt64 in
                s.sent += 1
                return s.sent
            }
            context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: server, data: request(n, allocator: context.channel.allocator))),
                          promise: nil)
        }
        context.flush()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let b = unwrapInboundIn(data).data
        guard b.getInteger(at: b.readerIndex, as: UInt16.self) == 0x0101 else { return }
        counter.add()
        state.withLock { $0.answered += 1 }
        send(context, count: 1)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let topUp = event as? TopUp else { return }
        // Requests sent before the previous top-up (200 ms ago) and still unanswered were lost on the way:
        // count them as done, and send new ones so that `count` are outstanding again.
        let missing = state.withLock { s -> Int in
            let outstanding = s.sent - s.answered
            let recent = s.sent - s.sentAtTopUp
            if outstanding > recent { s.answered += outstanding - recent }
            s.sentAtTopUp = s.sent
            return max(0, topUp.count - Int(s.sent - s.answered))
        }
        if missing > 0 { send(context, count: missing) }
    }
}
