import Server
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
