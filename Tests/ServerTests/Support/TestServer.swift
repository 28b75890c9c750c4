import Foundation
import Logging
import Server
import StreamHub
import Locks
import TestSupport

/// A LiveSwarm running in this process on free loopback ports.
final class TestServer: Sendable {
    let swarm: LiveSwarm
    let ports: LiveSwarm.BoundPorts
    let task: Task<Void, any Error>

    var rtmpURL: String { "rtmp://127.0.0.1:\(ports.rtmp)" }
    var httpURL: String { "http://127.0.0.1:\(ports.http)" }

    private init(swarm: LiveSwarm, ports: LiveSwarm.BoundPorts, task: Task<Void, any Error>) {
        self.swarm = swarm
        self.ports = ports
        self.task = task
    }

    static func start(_ configure: (inout ServerConfiguration) -> Void = { _ in }) async throws -> TestServer {
        var config = ServerConfiguration.loopbackEphemeral
        configure(&config)
        var logger = Logger(label: "test")
        logger.logLevel = ProcessInfo.processInfo.environment["LIVESWARM_TEST_LOG"].flatMap { Logger.Level(rawValue: $0) } ?? .warning
        let swarm = LiveSwarm(configuration: config, logger: logger)
        let (stream, continuation) = AsyncStream<LiveSwarm.BoundPorts>.makeStream()
        let task = Task {
            defer { continuation.finish() }
            try await swarm.run(handleSignals: false) { continuation.yield($0) }
        }
        // A server that fails to start, or never reports its ports, fails the test instead of hanging it.
        let watchdog = Task {
            try await Task.sleep(for: .seconds(30))
            continuation.finish()
        }
        defer { watchdog.cancel() }
        var it = stream.makeAsyncIterator()
        guard let ports = await it.next() else {
            task.cancel()
            let outcome = switch await task.result {
            case .success: "it stopped"
            case .failure(let error): "\(error)"
            }
            throw TestFailure("the server did not start within 30 s: \(outcome)")
        }
        return TestServer(swarm: swarm, ports: ports, task: task)
    }

    /// A server on every address, whose ICE candidates name the host's end of `ns`'s link: for peers inside it.
    static func start(reachableFrom ns: NetworkNamespace, _ configure: (inout ServerConfiguration) -> Void = { _ in }) async throws -> TestServer {
        try await start { c in
            c.listenHost = "0.0.0.0"
            c.rtc.host = "0.0.0.0"
            c.rtc.advertisedHosts = [ns.hostAddress]
            configure(&c)
        }
    }

    func stop() async {
        task.cancel()
        _ = await task.result
    }

    /// The value of an unlabelled series in `/metrics` (`liveswarm_rtc_dropped_packets_total`, say); nil when the
    /// scrape does not have it.
    func metric(_ name: String) async throws -> Double? {
        let text = try await HTTPGet.fetch(port: ports.http, "/metrics").text
        return text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
    }

    /// Polls until `condition` holds, failing after `timeout`.
    func waitUntil(_ what: String, timeout: Duration = .seconds(15), _ condition: () async throws -> Bool) async throws {
        try await Self.waitUntil(what, timeout: timeout, condition)
    }

    static func waitUntil(_ what: String, timeout: Duration = .seconds(15), _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("timed out waiting for \(what)")
    }

    func waitForStream(_ key: StreamKey, timeout: Duration = .seconds(15)) async throws {
        try await waitUntil("\(key) to be live with video", timeout: timeout) {
            swarm.hub.snapshot().contains { $0.app == key.app && $0.stream == key.stream && $0.published && $0.gopCacheFrames > 0 }
        }
    }
}


extension TestServer {
    /// Waits until `stream` is published over WHIP and its producers have received at least `packets` packets.
    func waitForWebRTCStream(_ stream: String, packets: Int = 1, timeout: Duration = .seconds(30)) async throws {
        try await waitUntil("\(stream) published over WHIP with media", timeout: timeout) {
            guard let text = (try? await HTTPGet.fetch(port: ports.http, "/api/v1/webrtc/streams"))?.text,
                  let json = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
                  let streams = json["streams"] as? [[String: Any]] else { return false }
            return streams.contains { $0["stream"] as? String == stream && ($0["packetsIn"] as? Int ?? 0) >= packets }
        }
    }
}
