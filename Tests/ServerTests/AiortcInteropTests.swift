import Foundation
import Server
import Testing
import TestSupport

/// aiortc (PyPI), a WebRTC implementation nobody here wrote, publishes through WHIP and plays through WHEP
/// (`Tests/Browser/aiortc_peer.py`). aiortc offers no loopback candidates, so it runs in a network namespace
/// and the server advertises the namespace link's address.
@Suite(.serialized) struct AiortcInteropTests {
    struct Result: Decodable {
        var connection: String?
        var error: String?
        var videoFrames: Int
        var audioFrames: Int
        var colour: [Int]?
        var toneHz: Int?
        var videoPacketsSent: Int?
        var audioPacketsSent: Int?
    }

    static let script = BrowserWebRTCTests.root.appendingPathComponent("Tests/Browser/aiortc_peer.py").path

    static func python() -> String {
        ProcessInfo.processInfo.environment["LIVESWARM_PYTHON"].flatMap { $0.isEmpty ? nil : $0 } ?? "/usr/bin/python3"
    }

    static func result(_ t: Tool, seconds: Int) async throws -> Result {
        let status = await t.wait(timeout: .seconds(Int64(seconds) + 40))
        guard status == 0, let line = t.output.split(separator: "\n").last else {
            throw TestFailure("aiortc_peer.py exited \(status): \(t.errorOutput.suffix(2000))")
        }
        return try JSONDecoder().decode(Result.self, from: Data(line.utf8))
    }

    @Test func aiortcPublishesThroughWHIPAndPlaysThroughWHEP() async throws {
        let ns = try await NetworkNamespace.create()
        // Removed before the test returns: a detached removal could outlive the test process and leak the namespace.
        do {
            try await Self.publishAndPlay(in: ns)
        } catch {
            await ns.remove()
            throw error
        }
        await ns.remove()
    }

    static func publishAndPlay(in ns: NetworkNamespace) async throws {
        let server = try await TestServer.start { c in
            c.listenHost = "0.0.0.0"
            c.rtc.host = "0.0.0.0"
            c.rtc.advertisedHosts = [ns.hostAddress]
        }
        defer { Task { await server.stop() } }
        let base = "http://\(ns.hostAddress):\(server.ports.http)"
        // Y'CbCr 81/90/240 is red; the tone is 660 Hz.
        let publisher = try ns.tool(Self.python(), [Self.script, "publish", "\(base)/whip/live/aiortc", "--seconds", "14",
                                                    "--luma", "81", "--cb", "90", "--cr", "240", "--tone", "660"])
        defer { publisher.kill(SIGTERM) }
        try await server.waitForWebRTCStream("live/aiortc", timeout: .seconds(20))
        let player = try ns.tool(Self.python(), [Self.script, "play", "\(base)/whep/live/aiortc", "--seconds", "5"])
        let played = try await Self.result(player, seconds: 5)
        let published = try await Self.result(publisher, seconds: 14)
        print("""
            aiortc WHIP publisher: \(published.videoPacketsSent ?? 0) video and \(published.audioPacketsSent ?? 0) audio packets sent
            aiortc WHEP player: \(played.videoFrames) video frames, \(played.audioFrames) audio frames, colour \(played.colour ?? []), \
            tone \(played.toneHz ?? 0) Hz
            """)
        #expect(published.error == nil && played.error == nil, "\(published.error ?? "") \(played.error ?? "")")
        #expect(played.videoFrames > 60 && played.audioFrames > 100)
        let colour = try #require(played.colour)
        #expect(zip(colour, [81, 90, 240]).allSatisfy { abs($0 - $1) <= 8 }, "colour \(colour)")
        #expect(abs((played.toneHz ?? 0) - 660) <= 10)
    }
}
