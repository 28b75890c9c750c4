import ICE
import NIOCore
import NIOPosix
import STUN
import Server
@testable import SFU
import StreamHub
import Testing

/// A stopped server frees itself: nothing it made is kept alive by a reference cycle. A cycle costs little in
/// production (one server per process), but the tests start hundreds, and LeakSanitizer (scripts/sanitize.sh) can
/// point at a per-session leak only when whole servers do not stand in front of it.
@Suite struct ServerLifetimeTests {
    @Test func aStoppedServerIsFreed() async throws {
        weak var swarm: LiveSwarm?
        weak var hub: StreamHub?
        weak var registry: AnyObject?
        do {
            let server = try await TestServer.start()
            swarm = server.swarm
            hub = server.swarm.hub
            registry = server.swarm.registry
            await server.stop()
        }
        // Found this way: the room endpoint's relay for its forwarder's callback held the endpoint (endpoint ->
        // forwarder -> callback -> relay -> endpoint), and with it the SFU, the media port, STUN and the hub; and the
        // hub's playback gate held the rooms.
        try await TestServer.waitUntil("the stopped server's hub and metrics registry freed", timeout: .seconds(10)) {
            swarm == nil && hub == nil && registry == nil
        }
    }
}

/// A WHIP stream that ends lets go of what it made, with its viewers connected: the soak (docs/RELIABILITY.md)
/// found 1.3 MB kept for good per WHIP session with three viewers. Its router's producers and the viewers' consumers
/// held each other, so did the producers and the stream's hub ingest, and so did a viewer's transport and its
/// connected handler; each producer kept the publisher's last 512 packets.
@Suite struct WHIPLifetimeTests {
    @Test func anEndedWHIPStreamIsFreedWithItsViewersConnected() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let registry = try #require(server.swarm.webRTC)
        weak var router: Router?
        weak var producer: Producer?
        do {
            let publisher = try await SFUForwardingTests.connect(server, path: "/whip/live/freed", offer: WHIPTests.offer)
            var viewers: [SFUForwardingTests.Peer] = []
            for _ in 0..<2 { viewers.append(try await SFUForwardingTests.connect(server, path: "/whep/live/freed", offer: WHIPTests.playOffer)) }
            let r = try #require(registry.lock.withLock { registry.routers["live/freed"] })
            try await TestServer.waitUntil("both viewers attached", timeout: .seconds(5)) { r.viewerCount == 2 }
            for seq in 0..<50 { try await publisher.send(SFUForwardingTests.vp8(seq: UInt16(seq), ts: UInt32(seq) * 3000)) }
            (router, producer) = (r, r.producers.first)
            #expect(producer != nil)
            let location = try #require(publisher.location)
            #expect(try await HTTPGet.fetch(port: server.ports.http, location, method: "DELETE").status == 200)
            publisher.link.close()
            for v in viewers { v.link.close() }
        }
        try await TestServer.waitUntil("the ended stream's router and producers freed", timeout: .seconds(10)) {
            router == nil && producer == nil
        }
    }
}

/// A stopped TURN server frees itself too, with allocations made over UDP (IPv4 and IPv6 relays) still open when it
/// stops.
@Suite struct TURNLifetimeTests {
    @Test(arguments: [false, true]) func aStoppedTURNServerIsFreed(v6: Bool) async throws {
        weak var swarm: LiveSwarm?
        do {
            let server = try await TestServer.start { c in
                c.stun.turn.users = ["turn-test": "pass-word"]
                if v6 { c.stun.turn.relayIPv6 = "::1" }
            }
            swarm = server.swarm
            let c = try TURNSecurityTests.Client(port: server.ports.stunUDP)
            let family: [(AttributeType, [UInt8])] = v6 ? [(.requestedAddressFamily, [2, 0, 0, 0])] : []
            let allocated = try c.request(.allocate, [(.requestedTransport, [17, 0, 0, 0])] + family)
            #expect(allocated.type.messageClass == .successResponse, "\(String(describing: try? allocated.errorCode()))")
            await server.stop()
        }
        try await TestServer.waitUntil("the stopped TURN server freed", timeout: .seconds(10)) { swarm == nil }
    }

    /// A relay port found taken (another process has it) is tried and given up (508 after twenty tries), and each
    /// socket that failed to bind is closed: swift-nio's DatagramBootstrap leaves it open, and its handler held the
    /// TURN endpoint (LeakSanitizer found the whole server leaked in CI, where a relay port was once found taken).
    @Test func aRelayPortFoundTakenLeavesNothingBehind() async throws {
        let taken = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        defer { taken.close(promise: nil) }
        let port = try #require(taken.localAddress?.port)
        weak var allocations: Allocations?
        do {
            let server = try await TestServer.start { c in
                c.stun.turn.users = ["turn-test": "pass-word"]
                c.stun.turn.relayPorts = port...port
            }
            allocations = server.swarm.turnAllocations
            let c = try TURNSecurityTests.Client(port: server.ports.stunUDP)
            let refused = try c.request(.allocate, [(.requestedTransport, [17, 0, 0, 0])])
            #expect(try refused.errorCode()?.code == 508, "the only relay port is taken")
            await server.stop()
        }
        try await TestServer.waitUntil("the stopped TURN server's allocations freed", timeout: .seconds(10)) { allocations == nil }
    }
}
