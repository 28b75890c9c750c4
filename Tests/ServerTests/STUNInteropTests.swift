import Foundation
import NIOCore
import NIOPosix
import Server
import STUN
import Locks
import Testing

/// The STUN server on UDP and TCP, against coturn's own client and raw sockets.
@Suite(.serialized, .timeLimit(.minutes(5))) struct STUNInteropTests {
    /// Stopping the server (cancelling its task) ends every service, the STUN listeners included, at once: a
    /// service that waited only for graceful shutdown once left stopped test servers running and hung the suite.
    @Test func stopsPromptly() async throws {
        let server = try await TestServer.start()
        let stopped = ContinuousClock.now
        let done = StopFlag()
        Task { await server.stop(); done.set() }  // not awaited: a hung stop must fail the test, not hang it
        var finished = false
        while !finished && ContinuousClock.now - stopped < .seconds(5) {
            try await Task.sleep(for: .milliseconds(20))
            finished = done.isSet
        }
        #expect(finished, "the server did not stop within 5 s")
        try #require(finished)
        // The UDP port is free again.
        let reuse = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: server.ports.stunUDP).get()
        try await reuse.close()
    }

    /// coturn's `turnutils_stunclient` learns its own address and port from LiveSwarm.
    @Test func coturnClientGetsItsMappedAddress() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let output = try await Tool.run("turnutils_stunclient", ["-p", String(server.ports.stunUDP), "127.0.0.1"], timeout: .seconds(20))
        print("turnutils_stunclient: \(output.trimmingCharacters(in: .whitespacesAndNewlines))")
        // It prints "UDP reflexive addr: 127.0.0.1:PORT" for the address it was seen from.
        let line = try #require(output.split(separator: "\n").first { $0.contains("reflexive addr") })
        let mapped = try #require(line.split(separator: " ").last)
        #expect(mapped.hasPrefix("127.0.0.1:"), "\(line)")
        let port = Int(mapped.dropFirst("127.0.0.1:".count)) ?? 0
        #expect((1024...65535).contains(port) && port != server.ports.stunUDP, "\(line)")
    }

    /// A raw UDP client: the mapped address is the socket it sent from; garbage and a bad FINGERPRINT get no
    /// answer, and the next good request still does.
    @Test func udpBindingAndBadInput() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let client = try await UDPTestClient.open()
        defer { client.close() }
        let tid = (0..<12).map { _ in UInt8.random(in: 0...255) }
        let good = Message(type: .bindingRequest, transactionID: tid).encode(fingerprint: true)
        var badFingerprint = good
        badFingerprint[badFingerprint.count - 1] ^= 1
        for junk in [[UInt8](repeating: 0x41, count: 100), [0x80, 0x60] + [UInt8](repeating: 0, count: 30), badFingerprint, []] {
            try await client.send(junk, to: server.ports.stunUDP)
        }
        #expect(await client.receive(timeout: .milliseconds(300)) == nil, "junk got an answer")
        try await client.send(good, to: server.ports.stunUDP)
        let answer = try #require(await client.receive(timeout: .seconds(2)))
        let response = try Message(parsing: answer)
        #expect(response.type == .bindingSuccess && response.transactionID == tid && response.fingerprintIsValid == true)
        #expect(try response.xorMappedAddress() == Address(ip: [127, 0, 0, 1], port: UInt16(client.localPort)))

        // A request as large as a browser's ICE check (and beyond): the socket reads whole datagrams. A receive
        // buffer split 32 ways once cut every datagram at 64 bytes and these went unanswered.
        for padding in [100, 600, 1400] {
            let big = Message(type: .bindingRequest, transactionID: tid)
                .adding(.software, [UInt8](repeating: 0x61, count: padding)).encode(fingerprint: true)
            try await client.send(big, to: server.ports.stunUDP)
            let reply = await client.receive(timeout: .seconds(2))
            #expect(reply.flatMap { try? Message(parsing: $0) }?.type == .bindingSuccess, "\(big.count)-byte request")
        }
    }

    /// Over TCP, two requests in one write and one request split in two are each answered; bytes that are not
    /// STUN close the connection.
    @Test func tcpFramingAndGarbage() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let tcp = try await TCPTestClient.connect(port: server.ports.stunTCP)
        let a = Message(type: .bindingRequest, transactionID: [UInt8](repeating: 1, count: 12)).encode()
        let b = Message(type: .bindingRequest, transactionID: [UInt8](repeating: 2, count: 12)).encode(fingerprint: true)
        try await tcp.send(ByteBuffer(bytes: a + b[..<10]))
        try await Task.sleep(for: .milliseconds(100))
        try await tcp.send(ByteBuffer(bytes: b[10...]))
        var received: [UInt8] = []
        while received.count < 2 * 44, let chunk = await tcp.receive(timeout: .seconds(2)) { received += chunk.readableBytesView }
        let first = try Message(parsing: Array(received[..<Message.messageLength(header: received)!]))
        let second = try Message(parsing: Array(received[Message.messageLength(header: received)!...]))
        #expect(first.transactionID == [UInt8](repeating: 1, count: 12) && second.transactionID == [UInt8](repeating: 2, count: 12))
        #expect(try first.xorMappedAddress()?.ip == [127, 0, 0, 1])
        try await tcp.send("GET / HTTP/1.1\r\n\r\n")
        #expect(await tcp.closesWithin(.seconds(2)))
    }
}

final class StopFlag: Sendable {
    let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}

/// A UDP socket on loopback for tests.
final class UDPTestClient: Sendable {
    let channel: any Channel
    let inbox: TCPTestClient.Inbox

    final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let inbox: TCPTestClient.Inbox
        init(inbox: TCPTestClient.Inbox) { self.inbox = inbox }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { inbox.deliver(unwrapInboundIn(data).data) }
    }

    init(channel: any Channel, inbox: TCPTestClient.Inbox) {
        self.channel = channel
        self.inbox = inbox
    }

    static func open(host: String = "127.0.0.1") async throws -> UDPTestClient {
        let inbox = TCPTestClient.Inbox()
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(Collector(inbox: inbox)) } }
            .bind(host: host, port: 0).get()
        return UDPTestClient(channel: channel, inbox: inbox)
    }

    var localPort: Int { channel.localAddress?.port ?? 0 }

    func send(_ bytes: [UInt8], to port: Int) async throws {
        let to = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        try await channel.writeAndFlush(AddressedEnvelope(remoteAddress: to, data: ByteBuffer(bytes: bytes))).get()
    }

    /// Several datagrams in one flush: swift-nio sends them with one `sendmmsg`.
    func send(burst: [[UInt8]], to port: Int) async throws {
        let to = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        let written = burst.map { channel.write(AddressedEnvelope(remoteAddress: to, data: ByteBuffer(bytes: $0))) }
        channel.flush()
        for w in written { try await w.get() }
    }

    func receive(timeout: Duration) async -> [UInt8]? {
        await inbox.next(timeout: timeout).map { Array($0.readableBytesView) }
    }

    func close() { channel.close(promise: nil) }
}
