import Foundation
import ICE
import Server
import Testing
import TestSupport

/// coturn's own client relays through LiveSwarm: `turnutils_uclient` to `turnutils_peer` (a UDP echo on
/// 127.0.0.2, a loopback address that is not the server's own), over UDP, TCP and TLS, with channels and with Send
/// indications, padded ChannelData and DONT-FRAGMENT, and client to client (IPv4 and IPv6 relays, the IPv6 ones on
/// ::1), each with a static user and with a
/// REST secret. uclient's exit status says nothing, and it clamps what it counts as received to what it sent:
/// each run's totals, loss and error lines are read.
@Suite(.timeLimit(.minutes(5))) struct TURNInteropTests {
    static let user = ("turn-test", "pass-word")
    static let secret = "rest-secret"

    static func server(tls: TestCertificates) async throws -> TestServer {
        try await TestServer.start { c in
            c.stun.turn.users = [user.0: user.1]
            c.stun.turn.secrets = [secret]
            c.stun.turn.allowLoopback = true
            c.stun.turn.relayPorts = 62000...62999
            c.stun.turn.relayIPv6 = "::1"
            c.stun.turn.tls = TURNConfiguration.TLS(port: 0, certificate: tls.chain, key: tls.key)
        }
    }

    /// A free UDP port on 127.0.0.2 for turnutils_peer.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.2")
        a.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard bound else { throw TestFailure("no free UDP port on 127.0.0.2") }
        return Int(UInt16(bigEndian: a.sin_port))
    }

    struct Totals {
        var sent: Int
        var received: Int
        var lost: Int
        var output: String
    }

    /// One uclient run; the totals from its summary lines. A line with "error" or "not completed" fails it.
    static func uclient(_ flags: [String], server: TestServer, peerPort: Int?, rest: Bool, messages: Int = 20) async throws -> Totals {
        let credentials = rest ? ["-u", "uclient", "-W", secret] : ["-u", user.0, "-w", user.1]
        let peer = peerPort.map { ["-e", "127.0.0.2", "-r", String($0)] } ?? []
        let arguments = flags + peer + credentials + ["-n", String(messages), "-l", "120", "-z", "5", "-p", String(flags.contains("-S") ? server.ports.turnTLS ?? 0 : flags.contains("-t") ? server.ports.stunTCP : server.ports.stunUDP), "127.0.0.1"]
        let tool = try Tool("turnutils_uclient", arguments)
        await tool.wait(timeout: .seconds(60))
        let output = tool.output + tool.errorOutput
        func number(after key: String) -> Int? {
            output.range(of: key, options: .backwards).map { Int(output[$0.upperBound...].prefix { $0.isNumber }) } ?? nil
        }
        // Over TLS, uclient picks one of its SSL contexts at random for each connection, TLS 1.0 and 1.1 among them,
        // and retries with another when one fails: LiveSwarm refuses TLS below 1.2 (RFC 8996), and those attempts'
        // lines are the only ones excused, and only once a connection was made with TLS 1.2 or 1.3.
        let tlsConnected = output.contains("client session connected with cipher") && output.contains("method=TLSv1.")
        let refusedVersion = { (line: Substring) in
            tlsConnected && (line.contains("tlsv1 alert protocol version") || line.contains("tls_connect: cannot connect"))
        }
        let bad = output.split(separator: "\n").filter { ($0.lowercased().contains("error") || $0.contains("not completed")) && !refusedVersion($0) }
        guard bad.isEmpty, let sent = number(after: "tot_send_msgs="), let received = number(after: "tot_recv_msgs="),
            let lost = number(after: "Total lost packets ")
        else {
            throw TestFailure("turnutils_uclient \(arguments.joined(separator: " ")):\n\(output.suffix(3000))")
        }
        return Totals(sent: sent, received: received, lost: lost, output: output)
    }

    /// Behind a NAT (`--turn-external-ip`, here 127.0.0.3, where nothing listens): relays are advertised at the
    /// external address and clients relaying to each other there are served locally, as a NAT that does not
    /// hairpin requires.
    @Test func clientsRelayToEachOtherAtTheExternalAddress() async throws {
        let server = try await TestServer.start { c in
            c.stun.turn.users = [Self.user.0: Self.user.1]
            c.stun.turn.secrets = [Self.secret]
            c.stun.turn.externalIP = "127.0.0.3"
        }
        defer { Task { await server.stop() } }
        let t = try await Self.uclient(["-X", "-y"], server: server, peerPort: nil, rest: false)
        print("client to client at the external address: sent \(t.sent), received \(t.received), lost \(t.lost)")
        #expect(t.sent == 80 && t.received == t.sent && t.lost == 0, "\(t.output.suffix(1500))")
        let probe = try TURNSecurityTests.Client(port: server.ports.stunUDP, user: Self.user.0, password: Self.user.1)
        let relayed = try probe.request(.allocate, [(.requestedTransport, [17, 0, 0, 0])]).xorRelayedAddress()
        #expect(relayed?.ip == [127, 0, 0, 3], "relays advertised at the external address: \(String(describing: relayed))")
    }

    /// Each flag set, with a static user and with a REST secret: every message sent comes back, none lost.
    @Test(arguments: [
        ("UDP, channels", ["-X"], true),
        ("UDP, Send indications", ["-X", "-s"], true),
        ("UDP, padded ChannelData", ["-X", "-D"], true),
        ("UDP, DONT-FRAGMENT", ["-X", "-g"], true),
        ("TCP to the server", ["-X", "-t"], true),
        ("TLS to the server", ["-X", "-t", "-S"], true),
        ("client to client", ["-X", "-y"], false),
        ("client to client, IPv6 relays", ["-x", "-y"], false),
    ])
    func coturnsClientRelaysThroughLiveSwarm(_ name: String, _ flags: [String], _ usesPeer: Bool) async throws {
        let certificates = try TestCertificates.make()
        defer { certificates.remove() }
        let server = try await Self.server(tls: certificates)
        defer { Task { await server.stop() } }
        let peerPort = try Self.freePort()
        let echo = try Tool("turnutils_peer", ["-L", "127.0.0.2", "-p", String(peerPort)])
        defer { echo.kill() }
        try await Task.sleep(for: .milliseconds(300))
        // The static user's run and the REST secret's at once: uclient waits 1 to 6 s before it sends (coturn's
        // uclient.c), so each run takes about 5 s whatever it relays.
        async let staticUser = Self.uclient(flags, server: server, peerPort: usesPeer ? peerPort : nil, rest: false)
        async let restSecret = Self.uclient(flags, server: server, peerPort: usesPeer ? peerPort : nil, rest: true)
        for (rest, t) in [(false, try await staticUser), (true, try await restSecret)] {
            print("\(name), \(rest ? "REST secret" : "static user"): sent \(t.sent), received \(t.received), lost \(t.lost)")
            // One client without -c is an RTP and RTCP pair, 20 messages each; client to client, both ends send.
            #expect(t.sent == (usesPeer ? 40 : 80) && t.received == t.sent && t.lost == 0, "\(name): \(t.output.suffix(1500))")
        }
        let counters = try #require(server.swarm.turnAllocations?.snapshot)
        #expect(counters.allocated >= 4 && counters.relayedPackets >= 160 && counters.deniedPeers == 0)
        // Prometheus catches up within about a second.
        var scraped = 0
        for _ in 0..<20 where scraped < counters.relayedPackets {
            try await Task.sleep(for: .milliseconds(250))
            scraped = Int(try await server.metric("liveswarm_turn_relayed_packets_total") ?? 0)
        }
        #expect(scraped >= counters.relayedPackets, "/metrics shows \(scraped) relayed packets of \(counters.relayedPackets)")
    }
}
