import Foundation
import Server
import Testing
import TestSupport

/// A WHEP viewer on a lossy path: Chromium plays from inside a network namespace where nftables drops 5 % of
/// the UDP packets coming from the media port, at random. With NACK the viewer asks for what it lost and gets
/// it from the SFU's buffer; the control run, with NACK off in the server, freezes more.
@Suite(.serialized, .timeLimit(.minutes(5))) struct BrowserLossTests {
    struct Run {
        var framesDecoded: Int
        var nackCount: Int
        var freezeSeconds: Double
        var freezeCount: Int
        var dropped: Int
        var retransmitted: Int
        var seconds: Double
        var freezeShare: Double { freezeSeconds / seconds }
    }

    struct Stats: Decodable {
        var connection: String
        var error: String?
        var framesDecoded: Int?
        var nackCount: Int?
        var pliCount: Int?
        var freezeCount: Int?
        var totalFreezesDuration: Double?
    }

    static func run(nack: Bool, seconds: Int = 20) async throws -> Run {
        let ns = try await NetworkNamespace.create()
        do {
            let result = try await run(nack: nack, seconds: seconds, in: ns)
            await ns.remove()
            return result
        } catch {
            await ns.remove()
            throw error
        }
    }

    static func run(nack: Bool, seconds: Int, in ns: NetworkNamespace) async throws -> Run {
        let server = try await TestServer.start { c in
            c.listenHost = "0.0.0.0"
            c.rtc.host = "0.0.0.0"
            c.rtc.advertisedHosts = [ns.hostAddress]
            c.webRTC.nack = nack
        }
        defer { Task { await server.stop() } }
        try await ns.dropIncoming(percent: 5, udpSourcePort: server.ports.rtcUDP)
        let publisher = try BrowserWebRTCTests.page(server, "role=publish&stream=live/loss&size=640x480&noise=1", seconds: seconds + 25)
        defer { publisher.kill(SIGTERM) }
        try await server.waitForWebRTCStream("live/loss", timeout: .seconds(30))
        try await Task.sleep(for: .seconds(3))  // past the bitrate ramp-up
        let python = Tool.pythonCommand
        let viewer = try ns.tool(python[0], Array(python.dropFirst()) + Tool.driveArguments(
            url: "http://\(ns.hostAddress):\(server.ports.http)/webrtc/?role=play&stream=live/loss", seconds: seconds,
            statsJS: "return window.webrtcStats()"))
        let s = try await viewer.jsonResult(Stats.self, timeout: .seconds(Int64(seconds) + 60))
        #expect(s.connection == "connected" && s.error == nil, "viewer: \(s.error ?? s.connection)")
        let api = try await HTTPGet.fetch(port: server.ports.http, "/api/v1/webrtc/streams").text
        let retransmitted = api.range(of: "\"retransmitted\":").map { Int(api[$0.upperBound...].prefix { $0.isNumber }) ?? 0 } ?? 0
        return Run(framesDecoded: s.framesDecoded ?? 0, nackCount: s.nackCount ?? 0, freezeSeconds: s.totalFreezesDuration ?? 0,
                   freezeCount: s.freezeCount ?? 0, dropped: try await ns.dropped(), retransmitted: retransmitted, seconds: Double(seconds))
    }

    @Test func nackRecoversFivePercentLossAndTheControlRunFreezesMore() async throws {
        let with = try await Self.run(nack: true)
        let without = try await Self.run(nack: false)
        for (name, r) in [("NACK on", with), ("NACK off", without)] {
            print("""
                5 % loss to the viewer, \(name): \(r.dropped) packets dropped by nftables, \(r.nackCount) NACKs sent, \
                \(r.retransmitted) retransmitted; \(r.framesDecoded) frames decoded in \(Int(r.seconds)) s; \
                \(r.freezeCount) freezes, frozen \(String(format: "%.1f", r.freezeShare * 100)) % of the time
                """)
        }
        #expect(with.dropped > 50, "the path lost packets")
        #expect(with.nackCount > 0 && with.retransmitted > 0)
        #expect(with.freezeShare < 0.15, "frozen \(with.freezeShare * 100) % of the time with NACK")
        #expect(without.retransmitted == 0)
        #expect(without.freezeSeconds > with.freezeSeconds + 1 || Double(without.framesDecoded) < 0.8 * Double(with.framesDecoded),
                "without NACK: frozen \(without.freezeSeconds) s, \(without.framesDecoded) frames; with: \(with.freezeSeconds) s, \(with.framesDecoded) frames")
    }
}
