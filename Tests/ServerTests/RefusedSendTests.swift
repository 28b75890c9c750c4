import Foundation
@testable import ICE
import Locks
import Logging
import Metrics
import NIOCore
import Prometheus
import RTP
import STUN
import Testing
import TestSupport
@testable import Server

/// A datagram the kernel refuses to send: an nftables rule in the output hook drops it, and `sendmsg` fails with
/// EPERM (as it does when a firewall rule or a full conntrack table drops a packet). swift-nio closes a UDP channel on
/// that error: when its channels sent, one refused datagram to one viewer ended the media port, every session on it
/// and the whole server; rebinding the port after each close kept the server up, but every datagram queued behind a
/// refused one went with it (the other viewer got 0 of 30). The listeners now send with `DatagramWriter`, which
/// drops the refused datagram alone. Needs root (nftables); the rules match only this test's ports.
@Suite(.serialized, .timeLimit(.minutes(3))) struct RefusedSendTests {
    /// An nftables table of this test's own, dropping what leaves `sourcePort` for `destinationPort` on loopback.
    struct Refusal {
        static let made = Mutex(0)
        /// A table of its own: a lift that runs late (from a `defer`) removes only this one.
        let table: String

        init(sourcePort: Int, destinationPort: Int) async throws {
            guard getuid() == 0 else { throw TestFailure("nftables needs root") }
            table = "liveswarm_refused_\(getpid())_\(Self.made.withLock { n -> Int in n += 1; return n })"
            for args in [["add", "table", "inet", table],
                         ["add", "chain", "inet", table, "out", "{ type filter hook output priority 0; }"],
                         ["add", "rule", "inet", table, "out", "udp", "sport", String(sourcePort), "udp", "dport", String(destinationPort),
                          "counter", "drop"]] {
                _ = try await Tool.run("nft", args, timeout: .seconds(10))
            }
        }

        /// Datagrams refused so far.
        func refused() async throws -> Int {
            let out = try await Tool.run("nft", ["list", "chain", "inet", table, "out"], timeout: .seconds(10))
            guard let r = out.range(of: "counter packets ") else { throw TestFailure("nft: \(out)") }
            return Int(out[r.upperBound...].prefix { $0.isNumber }) ?? 0
        }

        func lift() async {
            _ = try? await Tool.run("nft", ["delete", "table", "inet", table], timeout: .seconds(10))
        }
    }

    /// Sends `count` VP8 packets (numbered from `from`) and says how many each viewer got within a few seconds
    /// (what either had waiting is read away first).
    static func round(_ count: Int, from: Int, publisher: SFUForwardingTests.Peer,
                      to viewers: [SFUForwardingTests.Peer]) async throws -> [Int] {
        for v in viewers { while try await v.receive(timeout: .milliseconds(100)) != nil {} }
        for i in from..<(from + count) {
            try await publisher.send(SFUForwardingTests.vp8(seq: UInt16(i), ts: UInt32(i) * 3000))
            try await Task.sleep(for: .milliseconds(5))
        }
        var got: [Int] = []
        for v in viewers {
            var n = 0
            while n < count, let (_, rtcp) = try await v.receive(timeout: .seconds(2)) {
                if !rtcp { n += 1 }
            }
            got.append(n)
        }
        return got
    }

    /// One viewer's datagrams are refused for a while: the media port stays up, the publisher and the other viewer
    /// go on, and the refused viewer's session is still there when the refusal ends.
    @Test func aRefusedViewerDoesNotTakeTheMediaPortDown() async throws {
        let server = try await SFUForwardingTests.server()
        defer { Task { await server.stop() } }
        let publisher = try await SFUForwardingTests.connect(server, path: "/whip/live/refused", offer: WHIPTests.offer)
        defer { publisher.link.close() }
        let refused = try await SFUForwardingTests.connect(server, path: "/whep/live/refused", offer: WHIPTests.playOffer)
        defer { refused.link.close() }
        let other = try await SFUForwardingTests.connect(server, path: "/whep/live/refused", offer: WHIPTests.playOffer)
        defer { other.link.close() }
        #expect(try await Self.round(10, from: 0, publisher: publisher, to: [refused, other]) == [10, 10])

        let refusal = try await Refusal(sourcePort: server.ports.rtcUDP, destinationPort: refused.link.localPort)
        let during = try await Self.round(30, from: 10, publisher: publisher, to: [refused, other])
        let count = try await refusal.refused()
        await refusal.lift()
        print("refused \(count) datagrams to one viewer; of 30 packets meanwhile it got \(during[0]), the other viewer \(during[1])")
        #expect(count > 0 && during[0] == 0, "the kernel refused datagrams (EPERM)")
        #expect(during[1] == 30, "the other viewer lost nothing")
        // Refusal lifted: both viewers get everything, on the same sessions and the same port.
        #expect(try await Self.round(20, from: 40, publisher: publisher, to: [refused, other]) == [20, 20])
        let api = try await HTTPGet.fetch(port: server.ports.http, "/api/v1/webrtc/streams")
        #expect(api.status == 200, "the server is still up")
    }

    /// The STUN/TURN port's answers to one client are refused: the port stays up and answers the others, and that
    /// client again once the refusal ends.
    @Test func aRefusedSTUNClientDoesNotTakeThePortDown() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let refused = try await UDPTestClient.open()
        defer { refused.close() }
        let other = try await UDPTestClient.open()
        defer { other.close() }
        func answered(_ client: UDPTestClient) async throws -> Bool {
            let tid = (0..<12).map { _ in UInt8.random(in: 0...255) }
            try await client.send(Message(type: .bindingRequest, transactionID: tid).encode(fingerprint: true), to: server.ports.stunUDP)
            guard let reply = await client.receive(timeout: .seconds(2)), let m = try? Message(parsing: reply) else { return false }
            return m.type == .bindingSuccess && m.transactionID == tid
        }
        let before = (try await answered(refused), try await answered(other))
        #expect(before == (true, true))
        let refusal = try await Refusal(sourcePort: server.ports.stunUDP, destinationPort: refused.localPort)
        for _ in 0..<5 {
            let refusedAnswered = try await answered(refused), otherAnswered = try await answered(other)
            #expect(!refusedAnswered)
            #expect(otherAnswered, "the others are still answered")
        }
        let count = try await refusal.refused()
        await refusal.lift()
        #expect(count >= 5, "the kernel refused the answers (EPERM)")
        let after = try await answered(refused)
        #expect(after, "answered again once the refusal ends")
    }

    /// A TURN relay's datagrams to one peer are refused: the relay stays open, and relays to another peer and back.
    @Test func aRefusedPeerDoesNotCloseATURNRelay() async throws {
        let server = try await TestServer.start { c in
            c.stun.turn.users = ["turn-test": "pass-word"]
            c.stun.turn.allowLoopback = true
        }
        defer { Task { await server.stop() } }
        let client = try TURNSecurityTests.Client(port: server.ports.stunUDP)
        let allocated = try client.request(.allocate, [(.requestedTransport, [17, 0, 0, 0])])
        let relay = try #require(try allocated.xorRelayedAddress(), "\(String(describing: try? allocated.errorCode()))")
        // Peers on 127.0.0.2: loopback, but not the server's own address (where only its relays may be reached).
        let refused = try await UDPTestClient.open(host: "127.0.0.2")
        defer { refused.close() }
        let other = try await UDPTestClient.open(host: "127.0.0.2")
        defer { other.close() }
        let loopback: [UInt8] = [127, 0, 0, 2]
        #expect(try client.request(.createPermission, peers: [Address(ip: loopback, port: UInt16(other.localPort))]).type.messageClass
                == .successResponse)
        func send(_ text: String, to peer: UDPTestClient) {
            let indication = Message(type: MessageType(method: .send, messageClass: .indication), transactionID: (0..<12).map { _ in .random(in: 0...255) })
                .adding(.xorPeerAddress, address: Address(ip: loopback, port: UInt16(peer.localPort)))
                .adding(.data, Array(text.utf8))
            client.send(indication.encode())
        }
        let refusal = try await Refusal(sourcePort: Int(relay.port), destinationPort: refused.localPort)
        defer { Task { await refusal.lift() } }
        for i in 0..<5 { send("refused \(i)", to: refused) }
        send("to the other", to: other)
        let got = await other.receive(timeout: .seconds(2)).map { String(decoding: $0, as: UTF8.self) }
        #expect(got == "to the other", "the relay still sends to the other peer")
        #expect(await refused.receive(timeout: .milliseconds(200)) == nil)
        let count = try await refusal.refused()
        #expect(count == 5, "the kernel refused the relayed datagrams (EPERM)")
        // The other peer's answer comes back through the relay as a Data indication.
        try await other.send(Array("back".utf8), to: Int(relay.port))
        let back = client.receive().flatMap { try? Message(parsing: $0) }
        #expect(back?.data == Array("back".utf8), "the relay still receives")
    }

    /// A full send buffer (EAGAIN): the writer waits for room up to ``DatagramWriter/sendBufferWait`` in all, then
    /// drops what still does not fit, counted as refused; it neither blocks the calling event loop for longer nor
    /// stops sending, and everything it did not drop arrives. Loopback never fills a UDP send buffer (its datagrams
    /// leave the socket's account at once), so this sends over a veth into a namespace whose host end is shaped to
    /// 10 Mbit/s by a token bucket with a deep queue: queued datagrams stay charged to the socket's send buffer
    /// (Linux's default, about 208 KiB: some 90 datagrams of 1200 bytes, and half of it takes 85 ms to drain, so the
    /// 20 ms wait runs out).
    @Test func aFullSendBufferIsWaitedOnBrieflyThenDropped() async throws {
        try await NetworkNamespace.with { ns in
            _ = try await Tool.run("tc", ["qdisc", "add", "dev", ns.hostLink, "root", "tbf", "rate", "10mbit", "burst", "32kbit", "limit", "50mb"],
                                   timeout: .seconds(10))
            let port = 40_000
            // What arrives in the namespace, counted where it comes in (nobody listens there).
            for args in [["add", "table", "inet", "arrivals"],
                         ["add", "chain", "inet", "arrivals", "in", "{ type filter hook input priority 0; }"],
                         ["add", "rule", "inet", "arrivals", "in", "udp", "dport", String(port), "counter"]] {
                _ = try await Tool.run("ip", ["netns", "exec", ns.name, "nft"] + args, timeout: .seconds(10))
            }
            func arrived() async throws -> Int {
                let out = try await Tool.run("ip", ["netns", "exec", ns.name, "nft", "list", "chain", "inet", "arrivals", "in"], timeout: .seconds(10))
                guard let r = out.range(of: "counter packets ") else { throw TestFailure("nft: \(out)") }
                return Int(out[r.upperBound...].prefix { $0.isNumber }) ?? 0
            }
            func waitForArrivals(_ n: Int) async throws -> Int {
                var got = try await arrived()
                for _ in 0..<100 where got < n {
                    try await Task.sleep(for: .milliseconds(100))
                    got = try await arrived()
                }
                return got
            }
            let metrics = ReadableMetricsFactory(base: PrometheusMetricsFactory(registry: PrometheusCollectorRegistry()))
            let (fd, writer) = try DatagramWriter.bound(host: ns.hostAddress, port: 0, listener: false, what: "test socket",
                                                        logger: Logger(label: "test"), refused: Counter(label: "refused", factory: metrics))
            defer {
                writer.close()
                _ = Glibc.close(fd)
            }
            let to = try SocketAddress(ipAddress: ns.address, port: port)
            let datagrams = (0..<2000).map { i in AddressedEnvelope(remoteAddress: to, data: ByteBuffer(repeating: UInt8(i & 0xFF), count: 1200)) }
            let started = ContinuousClock.now
            writer.send(datagrams)
            let took = ContinuousClock.now - started
            let refused = metrics.total("refused")
            let got = try await waitForArrivals(2000 - refused)
            print("full send buffer: 2000 datagrams sent in \(took), \(refused) dropped, \(got) arrived")
            #expect(refused > 0 && refused < 2000, "the buffer filled, and what fitted went")
            #expect(took >= .milliseconds(DatagramWriter.sendBufferWait), "the writer waited for room before dropping")
            #expect(took < .seconds(2), "and not much longer: the caller is an event loop")
            #expect(got == 2000 - refused, "everything not dropped arrived")
            // Once the queue has drained the writer sends again, nothing refused.
            writer.send(Array(datagrams.prefix(10)))
            #expect(metrics.total("refused") == refused)
            #expect(try await waitForArrivals(got + 10) == got + 10)
        }
    }
}
