import Foundation
import Locks
import TestSupport

/// A network namespace joined to this one by a veth pair, for tests that need a peer that is not on loopback
/// (aiortc offers no loopback candidates) or a lossy path (nftables `numgen` drops: this kernel has no netem).
/// Needs root; the namespace and its link are removed by ``remove()``.
final class NetworkNamespace: Sendable {
    let name: String
    let hostAddress: String
    let address: String
    let hostLink: String
    /// The namespace's end of the link (empty for an isolated namespace).
    var peerLink: String { hostLink.isEmpty ? "" : hostLink.replacingOccurrences(of: "lsh", with: "lsp") }

    static let counter = Mutex(0)

    private init(name: String, hostAddress: String, address: String, hostLink: String) {
        (self.name, self.hostAddress, self.address, self.hostLink) = (name, hostAddress, address, hostLink)
    }

    /// A namespace with only its loopback up: ports of its own (and its own `net.ipv4.ip_local_port_range`).
    static func isolated() async throws -> NetworkNamespace {
        guard getuid() == 0 else { throw TestFailure("network namespaces need root (ip netns)") }
        let n = counter.withLock { c -> Int in c += 1; return c }
        let ns = NetworkNamespace(name: "liveswarm-\(getpid())-\(n)", hostAddress: "", address: "127.0.0.1", hostLink: "")
        for args in [["netns", "add", ns.name], ["netns", "exec", ns.name, "ip", "link", "set", "lo", "up"]] {
            _ = try await Tool.run("ip", args, timeout: .seconds(10))
        }
        return ns
    }

    static func create() async throws -> NetworkNamespace {
        guard getuid() == 0 else { throw TestFailure("network namespaces need root (ip netns)") }
        let n = counter.withLock { c -> Int in c += 1; return c }
        let id = Int(getpid()) % 200 + n
        let ns = NetworkNamespace(name: "liveswarm-\(getpid())-\(n)", hostAddress: "10.231.\(id).1", address: "10.231.\(id).2",
                                  hostLink: "lsh\(getpid() % 10000)n\(n)")
        let peerLink = "lsp\(getpid() % 10000)n\(n)"
        for args in [["netns", "add", ns.name],
                     ["netns", "exec", ns.name, "ip", "link", "set", "lo", "up"],
                     ["link", "add", ns.hostLink, "type", "veth", "peer", "name", peerLink],
                     ["link", "set", peerLink, "netns", ns.name],
                     ["addr", "add", "\(ns.hostAddress)/24", "dev", ns.hostLink],
                     ["link", "set", ns.hostLink, "up"],
                     ["netns", "exec", ns.name, "ip", "addr", "add", "\(ns.address)/24", "dev", peerLink],
                     ["netns", "exec", ns.name, "ip", "link", "set", peerLink, "up"]] {
            _ = try await Tool.run("ip", args, timeout: .seconds(10))
        }
        return ns
    }

    /// Drops `percent` % of the UDP packets that arrive in the namespace from `sourcePort`, at random.
    func dropIncoming(percent: Int, udpSourcePort: Int) async throws {
        for args in [["add", "table", "inet", "liveswarm"],
                     ["add", "chain", "inet", "liveswarm", "in", "{ type filter hook input priority 0; }"],
                     ["add", "rule", "inet", "liveswarm", "in", "udp", "sport", String(udpSourcePort), "numgen", "random", "mod", "100",
                      "<", String(percent), "counter", "drop"]] {
            _ = try await Tool.run("ip", ["netns", "exec", name, "nft"] + args, timeout: .seconds(10))
        }
    }

    /// The host's nftables table for this namespace's outgoing drops.
    var hostTable: String { "liveswarm_\(name.replacingOccurrences(of: "-", with: "_"))" }

    /// Drops `percent` % of the UDP packets the namespace sends to `destinationPort`, at random, where they arrive
    /// on the host: a drop in the namespace's own output hook would fail the sender's `sendmsg`, and Chromium
    /// sends such a packet again at once, so nothing would look lost. Split by RTP payload type (bits 1-7 of the
    /// second byte after the UDP header) to tell what was lost: VP8 media (96), its RTX (97), and the rest
    /// (audio, RTCP, STUN, DTLS). ``remove()`` deletes the rules.
    func dropOutgoing(percent: Int, udpDestinationPort: Int) async throws {
        let match = ["ip", "saddr", address, "udp", "dport", String(udpDestinationPort)]
        let drop = ["numgen", "random", "mod", "100", "<", String(percent), "counter", "drop"]
        for args in [["add", "table", "inet", hostTable],
                     ["add", "chain", "inet", hostTable, "in", "{ type filter hook input priority 0; }"],
                     ["add", "rule", "inet", hostTable, "in"] + match + ["@th,73,7", "96"] + drop,
                     ["add", "rule", "inet", hostTable, "in"] + match + ["@th,73,7", "97"] + drop,
                     ["add", "rule", "inet", hostTable, "in"] + match + ["@th,73,7", "!=", "{ 96, 97 }"] + drop] {
            _ = try await Tool.run("nft", args, timeout: .seconds(10))
        }
    }

    /// How many of the namespace's outgoing packets were dropped: VP8, its RTX, the rest.
    func droppedOutgoing() async throws -> (video: Int, rtx: Int, other: Int) {
        let out = try await Tool.run("nft", ["list", "chain", "inet", hostTable, "in"], timeout: .seconds(10))
        let counts = out.components(separatedBy: "counter packets ").dropFirst().map { Int($0.prefix { $0.isNumber }) ?? 0 }
        guard counts.count == 3 else { throw TestFailure("nft: \(out)") }
        return (counts[0], counts[1], counts[2])
    }

    /// How many packets the drop rule dropped.
    func dropped() async throws -> Int {
        let out = try await Tool.run("ip", ["netns", "exec", name, "nft", "list", "chain", "inet", "liveswarm", "in"], timeout: .seconds(10))
        guard let r = out.range(of: "counter packets ") else { return 0 }
        return Int(out[r.upperBound...].prefix { $0.isNumber }) ?? 0
    }

    /// A command run inside the namespace.
    func tool(_ executable: String, _ arguments: [String]) throws -> Tool {
        try Tool.executable("/usr/sbin/ip", ["netns", "exec", name, executable] + arguments)
    }

    /// The Python that has Selenium and aiortc (``Tool/pythonCommand``), run inside the namespace.
    func python(_ arguments: [String]) throws -> Tool {
        let python = Tool.pythonCommand
        return try tool(python[0], Array(python.dropFirst()) + arguments)
    }

    /// Runs `body` with a fresh namespace (``create()`` by default), removed before this returns, whether `body`
    /// returned or threw: a detached removal could outlive the test process and leak the namespace.
    static func with<T>(_ make: () async throws -> NetworkNamespace = { try await create() },
                        _ body: (NetworkNamespace) async throws -> T) async throws -> T {
        let ns = try await make()
        do {
            let result = try await body(ns)
            await ns.remove()
            return result
        } catch {
            await ns.remove()
            throw error
        }
    }

    func remove() async {
        _ = try? await Tool.run("nft", ["delete", "table", "inet", hostTable], timeout: .seconds(10))
        if !hostLink.isEmpty { _ = try? await Tool.run("ip", ["link", "del", hostLink], timeout: .seconds(10)) }
        _ = try? await Tool.run("ip", ["netns", "del", name], timeout: .seconds(10))
    }
}
