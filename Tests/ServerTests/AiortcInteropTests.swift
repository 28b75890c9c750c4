import Foundation
import Server
import Testing
import TestSupport

/// aiortc (PyPI), a WebRTC implementation nobody here wrote, publishes through WHIP and plays through WHEP
/// (`Tests/Browser/aiortc_peer.py`). aiortc offers no loopback candidates, so it runs in a network namespace
/// and the server advertises the namespace link's address.
@Suite(.serialized, .timeLimit(.minutes(5))) struct AiortcInteropTests {
    struct Result: Decodable {
        var connection: String?
        var error: String?
        var videoFrames: Int
        var audioFrames: Int
        var colour: [Int]?
        var toneHz: Int?
        var videoPacketsSent: Int?
        var audioPacketsSent: Int?
        var srtp: String?
    }

    static let script = Tool.checkout.appendingPathComponent("Tests/Browser/aiortc_peer.py").path

    /// aiortc_peer.py inside the namespace.
    static func peer(_ ns: NetworkNamespace, _ arguments: [String]) throws -> Tool {
        try ns.python([script] + arguments)
    }

    @Test func aiortcPublishesThroughWHIPAndPlaysThroughWHEP() async throws {
        try await NetworkNamespace.with { try await Self.publishAndPlay(in: $0) }
    }

    static func publishAndPlay(in ns: NetworkNamespace) async throws {
        let server = try await TestServer.start(reachableFrom: ns)
        defer { Task { await server.stop() } }
        let base = "http://\(ns.hostAddress):\(server.ports.http)"
        // Y'CbCr 81/90/240 is red; the tone is 660 Hz. The publisher offers only AES-CM with HMAC-SHA1 and the player
        // negotiates AES-GCM: both of the server's SRTP profiles, against aiortc's libsrtp, in one run.
        let publisher = try Self.peer(ns, ["publish", "\(base)/whip/live/aiortc", "--seconds", "14",
                                           "--luma", "81", "--cb", "90", "--cr", "240", "--tone", "660", "--srtp", "aes-cm"])
        defer { publisher.kill(SIGTERM) }
        try await server.waitForWebRTCStream("live/aiortc", timeout: .seconds(20))
        let player = try Self.peer(ns, ["play", "\(base)/whep/live/aiortc", "--seconds", "5"])
        let played = try await player.jsonResult(Result.self, timeout: .seconds(45))
        let published = try await publisher.jsonResult(Result.self, timeout: .seconds(54))
        print("""
            aiortc WHIP publisher: \(published.videoPacketsSent ?? 0) video and \(published.audioPacketsSent ?? 0) audio packets sent
            aiortc WHEP player: \(played.videoFrames) video frames, \(played.audioFrames) audio frames, colour \(played.colour ?? []), \
            tone \(played.toneHz ?? 0) Hz
            SRTP: publisher \(published.srtp ?? "?"), player \(played.srtp ?? "?")
            """)
        #expect(published.srtp == "SRTP_AES128_CM_SHA1_80" && played.srtp == "SRTP_AEAD_AES_128_GCM")
        #expect(published.error == nil && played.error == nil, "\(published.error ?? "") \(played.error ?? "")")
        #expect(played.videoFrames > 60 && played.audioFrames > 100)
        let colour = try #require(played.colour)
        #expect(zip(colour, [81, 90, 240]).allSatisfy { abs($0 - $1) <= 8 }, "colour \(colour)")
        #expect(abs((played.toneHz ?? 0) - 660) <= 10)
    }
}
