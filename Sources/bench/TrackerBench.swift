import ArgumentParser
import Foundation
import LoopbackWebSocket
import NIOCore
import P2PTracker
import Locks

/// A DataChannel-only offer as Chromium 156 writes it (one host candidate), the size of what the tracker relays.
let benchOfferSDP = """
    v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\na=extmap-allow-mixed\r\n\
    a=msid-semantic: WMS\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n\
    a=candidate:1467250027 1 udp 2122260223 192.0.2.2 46243 typ host generation 0 network-id 1\r\n\
    a=ice-ufrag:Xk3v\r\na=ice-pwd:6VQjEu0rmm2TnUo5J1X0xZ1b\r\na=ice-options:trickle\r\n\
    a=fingerprint:sha-256 5B:D3:8B:7D:9F:4C:AA:1E:77:03:62:DE:4A:91:3A:0C:10:2B:C4:7E:5A:88:D1:3F:61:02:9E:B4:C7:55:18:2D\r\n\
    a=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n
    """

/// The tracker's state machine alone (`P2PTracker.Tracker`, no sockets): `peers` simulated peers join one swarm,
/// each announcing with `offers` offers that are relayed to neighbours; every relayed offer is answered and the
/// answer relayed back. Reports time per announce and per answer (message parsing included: the peers' JSON is
/// made before the clock starts) and the process's resident memory with every peer in the swarm.
struct TrackerSwarmBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tracker-swarm")

    @Option(help: "Simulated peers, repeatable; each count is a fresh tracker.") var peers: [Int] = [10_000, 100_000]
    @Option(help: "Offers per announce.") var offers = 5

    static func rssMiB() -> Double {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
        return kb / 1024
    }

    static func cpuSeconds() -> Double {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6 + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) / 1e6
    }

    func run() throws {
        let hash = InfoHash.liveSwarm(stream: "live/bench", epoch: 1)
        let sdpJSON = String(decoding: try JSONEncoder().encode(benchOfferSDP), as: UTF8.self)
        print("| peers | offers each | wall (s) | CPU (s) | µs per announce | offers relayed | µs per answer | answers relayed | RSS before (MiB) | RSS after (MiB) | bytes per peer |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for n in peers {
            let rssBefore = Self.rssMiB()
            var c = Tracker.Configuration()
            c.maxPeersPerSwarm = n
            var tracker = Tracker(configuration: c, namespace: { $0 == hash ? "live/bench" : nil })
            let hashJSON = hash.jsonString
            func peer(_ i: Int) -> PeerID {
                PeerID(Array("-BENCH1-".utf8) + (0..<12).map { UInt8(truncatingIfNeeded: i >> (($0 % 4) * 8)) &+ UInt8($0) })!
            }
            // Peers join one after another, 1,000 a second of simulated time; the offers each announce relays are
            // answered at once (a browser answers within a second, well inside the tracker's 30 s offer timeout).
            var relayedCount = 0, answers = 0
            var announce = 0.0, answer = 0.0
            let t0 = Date(), c0 = Self.cpuSeconds()
            for i in 0..<n {
                let now = Double(i) / 1000
                tracker.connected(i, now: now)
                let offerList = (0..<offers).map { k in "{\"offer_id\":\"\(i)-\(k)\",\"offer\":{\"type\":\"offer\",\"sdp\":\(sdpJSON)}}" }
                let text = "{\"action\":\"announce\",\"info_hash\":\(hashJSON),\"peer_id\":\(peer(i).jsonString),\"numwant\":\(offers),"
                    + "\"uploaded\":0,\"downloaded\":0,\"left\":0,\"event\":\"started\",\"offers\":[\(offerList.joined(separator: ","))]}"
                let a0 = ContinuousClock.now
                let actions = tracker.received(text, from: i, now: now)
                announce += (ContinuousClock.now - a0) / .seconds(1)
                for case .send(let to, .offer(_, let from, let offerID, _)) in actions {
                    relayedCount += 1
                    let reply = "{\"action\":\"announce\",\"info_hash\":\(hashJSON),\"peer_id\":\(peer(to).jsonString),"
                        + "\"to_peer_id\":\(from.jsonString),\"offer_id\":\"\(offerID)\",\"answer\":{\"type\":\"answer\",\"sdp\":\(sdpJSON)}}"
                    let b0 = ContinuousClock.now
                    for case .send(_, .answer) in tracker.received(reply, from: to, now: now + 0.1) { answers += 1 }
                    answer += (ContinuousClock.now - b0) / .seconds(1)
                }
            }
            let wall = Date().timeIntervalSince(t0), cpu = Self.cpuSeconds() - c0
            let rssAfter = Self.rssMiB()
            print(String(format: "| %d | %d | %.1f | %.1f | %.1f | %d | %.1f | %d | %.0f | %.0f | %.0f |",
                         n, offers, wall, cpu, announce / Double(n) * 1e6, relayedCount,
                         answer / Double(max(1, relayedCount)) * 1e6, answers, rssBefore, rssAfter,
                         (rssAfter - rssBefore) * 1024 * 1024 / Double(n)))
            precondition(tracker.peerCount(hash) == n, "every peer is in the swarm")
            withExtendedLifetime(tracker) {}
        }
    }
}

/// Real WebSocket peers against a running server's `/tracker`: `peers` connections announce (with offers) into the
/// swarm of `infoHash`, answer the offers relayed to them, and announce again every `interval` seconds, for
/// `seconds`. The server's CPU and memory are read from /proc by scripts/bench-tracker.sh.
struct TrackerLoadBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tracker-load")

    @Option(help: "ws://HOST:PORT/tracker") var url: String
    @Option(help: "The swarm's info hash, hex (from /api/v1/streams/APP/STREAM/chunks).") var infoHash: String
    @Option(help: "WebSocket peers.") var peers = 1000
    @Option(help: "Offers per announce.") var offers = 2
    @Option(help: "Seconds between a peer's announces.") var interval = 20.0
    @Option(help: "Seconds to hold the connections after they are all open.") var seconds = 30.0
    @Option(help: "Connections opened a second.") var rate = 1000.0
    @Option(help: "The server's process id: its CPU and memory are read from /proc.") var pid: Int32?

    struct Counters {
        var connected = 0
        var failed = 0
        var announces = 0
        var replies = 0
        var offersIn = 0
        var answersIn = 0
        var failures = 0
    }

    final class Shared: Sendable {
        let counters = Mutex(Counters())
    }

    func run() async throws {
        guard let hash = InfoHash(hex: infoHash) else { throw ValidationError("--info-hash: 40 hex digits") }
        let shared = Shared()
        let (url, offers, interval) = (self.url, self.offers, self.interval)
        let sdpJSON = String(decoding: try JSONEncoder().encode(benchOfferSDP), as: UTF8.self)
        let hashJSON = hash.jsonString
        guard let parts = URL(string: url), parts.scheme == "ws", let host = parts.host, let port = parts.port else {
            throw ValidationError("--url: ws://HOST:PORT/PATH")
        }
        let path = parts.path.isEmpty ? "/" : parts.path
        let deadline = ContinuousClock.now + .seconds(Double(peers) / rate + seconds)
        let start = ContinuousClock.now
        let idle = pid.map { ProcStats.read(pid: $0) }
        // The server while every peer is connected and re-announcing: from 5 s after the last connection to 1 s
        // before the end.
        let steady = Task { () -> (ProcStats, ProcStats)? in
            guard let pid else { return nil }
            try? await Task.sleep(until: start + .seconds(Double(peers) / rate + 5))
            let a = ProcStats.read(pid: pid)
            try? await Task.sleep(until: deadline - .seconds(1))
            return (a, ProcStats.read(pid: pid))
        }
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<peers {
                try? await Task.sleep(until: start + .seconds(Double(i) / rate))
                group.addTask {
                    let me = PeerID(Array("-WSBENCH".utf8) + (0..<12).map { UInt8(truncatingIfNeeded: i >> (($0 % 4) * 8)) &+ UInt8($0) })!
                    let meJSON = me.jsonString
                    do {
                        try await LoopbackWebSocket.connect(host: host, port: port, path: path, maxMessageSize: 1 << 16) { inbound, outbound in
                            shared.counters.withLock { $0.connected += 1 }
                            try await withThrowingTaskGroup(of: Void.self) { inner in
                                inner.addTask {
                                    var round = 0
                                    func announce() async throws {
                                        round += 1
                                        let list = (0..<offers).map { k in "{\"offer_id\":\"\(i)-\(round)-\(k)\",\"offer\":{\"type\":\"offer\",\"sdp\":\(sdpJSON)}}" }
                                        try await outbound.send("{\"action\":\"announce\",\"info_hash\":\(hashJSON),\"peer_id\":\(meJSON),"
                                            + "\"numwant\":\(offers),\"uploaded\":\(round * 1000),\"offers\":[\(list.joined(separator: ","))]}")
                                        shared.counters.withLock { $0.announces += 1 }
                                    }
                                    try await announce()
                                    while ContinuousClock.now + .seconds(interval) < deadline {
                                        try await Task.sleep(for: .seconds(interval))
                                        try await announce()
                                    }
                                    try await Task.sleep(until: deadline)
                                    try await outbound.close()
                                }
                                for try await message in inbound {
                                    guard case .text(let text) = message else { continue }
                                    if text.contains("\"failure reason\"") {
                                        shared.counters.withLock { $0.failures += 1 }
                                    } else if text.contains("\"offer\":{") {
                                        shared.counters.withLock { $0.offersIn += 1 }
                                        // Answer it: the offer's id and sender are echoed back.
                                        guard let o = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
                                              let id = o["offer_id"] as? String, let from = o["peer_id"] as? String,
                                              let fromID = PeerID(binaryString: from) else { continue }
                                        try await outbound.send("{\"action\":\"announce\",\"info_hash\":\(hashJSON),\"peer_id\":\(meJSON),"
                                            + "\"to_peer_id\":\(fromID.jsonString),\"offer_id\":\"\(id)\",\"answer\":{\"type\":\"answer\",\"sdp\":\(sdpJSON)}}")
                                    } else if text.contains("\"answer\":{") {
                                        shared.counters.withLock { $0.answersIn += 1 }
                                    } else {
                                        shared.counters.withLock { $0.replies += 1 }
                                    }
                                }
                                inner.cancelAll()
                            }
                        }
                    } catch {
                        shared.counters.withLock { $0.failed += 1 }
                    }
                }
            }
            // Progress, once a second, to stderr.
            group.addTask {
                while ContinuousClock.now < deadline {
                    try? await Task.sleep(for: .seconds(5))
                    let c = shared.counters.withLock { $0 }
                    FileHandle.standardError.write(Data("tracker-load: \(c.connected) connected, \(c.failed) failed, \(c.announces) announces, \(c.replies) replies, \(c.offersIn) offers in, \(c.answersIn) answers in, \(c.failures) failures\n".utf8))
                }
            }
        }
        let c = shared.counters.withLock { $0 }
        if let idle, let (a, b) = await steady.value {
            print(String(format: "{\"serverRSSIdleMiB\":%.1f,\"serverRSSMiB\":%.1f,\"serverCPUPercent\":%.1f,\"steadySeconds\":%.1f}",
                         idle.rssMiB, b.rssMiB, b.cpuPercent(since: a), (b.at - a.at) / .seconds(1)))
        }
        print("{\"peers\":\(peers),\"connected\":\(c.connected),\"failed\":\(c.failed),\"announces\":\(c.announces),\"replies\":\(c.replies),"
              + "\"offersIn\":\(c.offersIn),\"answersIn\":\(c.answersIn),\"failures\":\(c.failures)}")
    }
}
