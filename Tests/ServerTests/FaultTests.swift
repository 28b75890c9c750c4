import Foundation
import StreamHub
import Testing

/// Faults injected into a running server (issue 23); each checks that what others watch goes on.
@Suite(.serialized, .timeLimit(.minutes(2))) struct FaultTests {
    /// A publisher whose path drops mid-GOP (its link in a network namespace set down: no FIN, no RST). The server
    /// ends its session after the publish idle timeout, the viewer waits through the republish grace, and a new
    /// publisher of the stream reaches it; nothing of the vanished connection is left.
    @Test func aPublisherThatVanishesWithoutAFINIsLetGoAndTheViewerGetsTheNextOne() async throws {
        try await NetworkNamespace.with { ns in
            let server = try await TestServer.start(reachableFrom: ns) {
                $0.rtmp.host = "0.0.0.0"
                $0.rtmp.publishIdleTimeout = .seconds(2)
                $0.hub.republishGrace = .seconds(10)
            }
            defer { Task { await server.stop() } }
            let key = StreamKey(app: "live", stream: "gone")!
            let ffmpeg = try ns.tool("ffmpeg", ["-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
                                                "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "50",
                                                "-f", "flv", "rtmp://\(ns.hostAddress):\(server.ports.rtmp)/live/gone"])
            defer { ffmpeg.kill() }
            try await server.waitForStream(key)
            let viewer = try await FLVTestClient.open(port: server.ports.http, path: "/live/gone.flv")
            #expect(try await viewer.read(until: { $0.tags.count >= 25 }, timeout: .seconds(10)))

            // Mid-GOP (a keyframe every 2 s), the path goes: the publisher's packets stop, and no FIN ever comes.
            _ = try await Tool.run("ip", ["netns", "exec", ns.name, "ip", "link", "set", ns.peerLink, "down"], timeout: .seconds(10))
            ffmpeg.kill()
            try await TestServer.waitUntil("the vanished publisher to be let go", timeout: .seconds(10)) {
                server.swarm.hub.source(key)?.isPublished == false
            }
            #expect(server.swarm.hub.source(key) != nil, "the stream waits for its publisher within the grace")
            // Nothing of the vanished connection is left: the RTMP port holds no connection (the viewer is HTTP-FLV).
            #expect(try await server.metric(#"liveswarm_connections{protocol="rtmp"}"#) == 0, "the vanished publisher's connection is gone")

            // A new publisher, from this host: the viewer that waited gets its frames.
            let before = viewer.tags.count
            let publisher = try await RTMPTestClient.connect(port: server.ports.rtmp)
            #expect(try await publisher.publish("gone") == "NetStream.Publish.Start")
            let feeder = try await publisher.feedVideo(gop: 25)
            defer { feeder.cancel() }
            #expect(try await viewer.read(until: { $0.tags.count >= before + 25 }, timeout: .seconds(10)),
                    "the viewer gets the new publisher's frames: \(viewer.tags.count - before)")
            await viewer.close()
            await publisher.tcp.close()
        }
    }
}
