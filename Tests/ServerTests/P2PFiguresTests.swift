import Foundation
import Server
import Testing
import TestSupport

/// `/api/v1/p2p`: the origin's own count of what it served, viewers' reports, and the hashes in the playlist.
@Suite(.serialized, .timeLimit(.minutes(3))) struct P2PFiguresTests {
    struct Summary: Decodable {
        struct Bytes: Decodable { var media: Int; var playlists: Int; var mediaResponses: Int }
        struct Stream: Decodable {
            var stream: String
            var viewers: Int
            var p2pViewers: Int
            var originBytes: Bytes
            var peerBytes: Double
            var reportedOriginBytes: Double
            var p2pShare: Double?
            var medianDelay: Double?
            var stalls: Int
            var stalledMs: Double
        }
        var streams: [Stream]
    }

    static func summary(_ server: TestServer) async throws -> Summary {
        try JSONDecoder().decode(Summary.self, from: try await HTTPGet.fetch(port: server.ports.http, "/api/v1/p2p").body)
    }

    static func report(stream: String = "live/figures", viewer: String, p2p: Bool = true, delay: Double? = 2.5, stalls: Int = 0,
                       origin: Double, peer: Double) -> String {
        let d = delay.map { "\($0)" } ?? "null"
        return #"{"stream":"\#(stream)","viewer":"\#(viewer)","p2p":\#(p2p),"delay":\#(d),"stalls":\#(stalls),"stalledMs":\#(stalls * 100),"# +
            #""firstFrameMs":900,"originBytes":\#(origin),"peerBytes":\#(peer),"uploadedBytes":0,"neighbours":3}"#
    }

    @Test func theOriginCountsWhatItServesAndThePlaylistCarriesEachPartsHash() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let publisher = try Tool.publisher(url: "\(server.rtmpURL)/live/figures", seconds: 12, size: "320x240")
        defer { publisher.kill() }
        let playlistPath = "/live/figures/index.m3u8"
        var playlist = ""
        try await server.waitUntil("four parts", timeout: .seconds(20)) {
            playlist = (try? await HTTPGet.fetch(port: server.ports.http, playlistPath))?.text ?? ""
            return playlist.components(separatedBy: "#EXT-X-PART:").count > 4
        }
        let before = try await Self.summary(server).streams.first { $0.stream == "live/figures" }
        // Each part's X-SHA256 is the base64 SHA-256 of the part served, as in Repr-Digest.
        let parts = playlist.split(separator: "\n").filter { $0.hasPrefix("#EXT-X-PART:") }
        var fetched = 0
        var playlistBytes = 0
        for line in parts.prefix(4) {
            let uri = try #require(line.firstMatch(of: /URI="([^"]+)"/)?.1)
            let hash = try #require(line.firstMatch(of: /X-SHA256="([^"]+)"/)?.1, "no X-SHA256 in \(line)")
            let part = try await HTTPGet.fetch(port: server.ports.http, "/live/figures/\(uri)")
            #expect(Data(ReferenceSHA256.hash(part.body)).base64EncodedString() == String(hash))
            #expect(part.headers["repr-digest"] == "sha-256=:\(hash):")
            fetched += part.body.count
        }
        let p = try await HTTPGet.fetch(port: server.ports.http, playlistPath)
        playlistBytes += p.body.count
        let after = try #require(try await Self.summary(server).streams.first { $0.stream == "live/figures" })
        #expect(after.originBytes.media - (before?.originBytes.media ?? 0) == fetched)
        #expect(after.originBytes.mediaResponses - (before?.originBytes.mediaResponses ?? 0) == 4)
        #expect(after.originBytes.playlists - (before?.originBytes.playlists ?? 0) >= playlistBytes)
        #expect(after.viewers == 0 && after.p2pShare == 0)
    }

    @Test func viewerReportsAreSummedAndBadOnesRefused() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        // Reports are taken for streams that exist.
        let publisher = try await RTMPTestClient.connect(port: server.ports.rtmp)
        #expect(try await publisher.publish("figures") == "NetStream.Publish.Start")
        defer { withExtendedLifetime(publisher) {} }
        func post(_ body: String) async throws -> Int {
            try await HTTPGet.fetch(port: server.ports.http, "/api/v1/p2p/reports", method: "POST",
                                    headers: ["Content-Type": "application/json"], body: body).status
        }
        #expect(try await post(Self.report(viewer: "a", delay: 2, origin: 1000, peer: 9000)) == 204)
        #expect(try await post(Self.report(viewer: "b", delay: 3, stalls: 1, origin: 500, peer: 4500)) == 204)
        #expect(try await post(Self.report(viewer: "c", p2p: false, delay: 5, origin: 10000, peer: 0)) == 204)
        #expect(try await post(Self.report(viewer: "a", delay: 2.2, origin: 1200, peer: 9800)) == 204, "a newer report replaces the old")
        // Refused: not JSON, missing fields, negative numbers, a bad stream name, an empty viewer id, too big.
        #expect(try await post("not json") == 400)
        #expect(try await post(#"{"stream":"live/figures"}"#) == 400)
        #expect(try await post(Self.report(viewer: "d", origin: -1, peer: 0)) == 400)
        #expect(try await post(Self.report(stream: "nope", viewer: "d", origin: 1, peer: 0)) == 400)
        #expect(try await post(Self.report(stream: "live/bad name", viewer: "d", origin: 1, peer: 0)) == 400)
        #expect(try await post(Self.report(viewer: "", origin: 1, peer: 0)) == 400)
        #expect(try await post(Self.report(viewer: String(repeating: "v", count: 5000), origin: 1, peer: 0)) == 413)
        // Numbers beyond belief (they would overflow the sums), and streams that do not exist.
        #expect(try await post(Self.report(viewer: "d", origin: 1, peer: 1e19)) == 400)
        #expect(try await post(Self.report(viewer: "d", delay: 1e308, origin: 1, peer: 1)) == 400)
        #expect(try await post(Self.report(viewer: "d", stalls: Int.max / 200, origin: 1, peer: 1)) == 400)
        #expect(try await post(Self.report(stream: "live/nobody", viewer: "d", origin: 1, peer: 0)) == 404)
        let s = try #require(try await Self.summary(server).streams.first { $0.stream == "live/figures" })
        #expect(s.viewers == 3 && s.p2pViewers == 2)
        #expect(s.peerBytes == 9800 + 4500 && s.reportedOriginBytes == 1200 + 500 + 10000)
        #expect(s.medianDelay == 3 && s.stalls == 1 && s.stalledMs == 100)
        // Nothing was served for this stream: all reported bytes are peer bytes as far as the origin knows.
        #expect(s.originBytes.media == 0 && s.p2pShare == 1)
    }
}
