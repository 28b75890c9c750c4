import Foundation
import Server
import StreamHub
import Testing

/// ffmpeg publishes RTMP; ffprobe and ffmpeg read the HLS (MPEG-TS) playlist LiveSwarm makes of it.
@Suite(.serialized) struct HLSInteropTests {
    @Test func ffmpegPlaysTheLivePlaylistAcrossARepublish() async throws {
        let server = try await TestServer.start { $0.hub.republishGrace = .seconds(3) }
        defer { Task { await server.stop() } }
        let url = "\(server.httpURL)/live/hls.m3u8"
        let first = try Tool.publisher(url: "\(server.rtmpURL)/live/hls", seconds: 6, gop: 30)
        try await server.waitUntil("two HLS segments", timeout: .seconds(20)) {
            (try? await HTTPGet.fetch(port: server.ports.http, "/live/hls.m3u8"))?.text.components(separatedBy: "#EXTINF").count ?? 0 >= 3
        }
        // While live: ffprobe reads the stream's shape through the playlist.
        let probe = try await Probe.run(url)
        #expect(probe.video?.codec_name == "h264" && probe.video?.width == 640 && probe.video?.height == 360)
        #expect(probe.audio?.codec_name == "aac")
        let live = try await HTTPGet.fetch(port: server.ports.http, "/live/hls.m3u8")
        #expect(live.headers["content-type"] == "application/vnd.apple.mpegurl")
        #expect(live.headers["cache-control"] == "no-cache")
        #expect(!live.text.contains("#EXT-X-ENDLIST"))
        let segmentName = try #require(live.text.split(separator: "\n").first { $0.hasSuffix(".ts") })
        let segment = try await HTTPGet.fetch(port: server.ports.http, "/live/\(segmentName)")
        #expect(segment.status == 200 && segment.headers["content-type"] == "video/mp2t")
        #expect(segment.headers["cache-control"]?.contains("immutable") == true)
        #expect(segment.body.count % 188 == 0 && segment.body.first == 0x47)

        // The publisher comes back within the grace period, then leaves for good.
        #expect(await first.wait(timeout: .seconds(20)) == 0)
        let second = try Tool.publisher(url: "\(server.rtmpURL)/live/hls", seconds: 5, gop: 30)
        #expect(await second.wait(timeout: .seconds(20)) == 0)
        try await server.waitUntil("the playlist to end", timeout: .seconds(15)) {
            (try? await HTTPGet.fetch(port: server.ports.http, "/live/hls.m3u8"))?.text.contains("#EXT-X-ENDLIST") == true
        }
        let ended = try await HTTPGet.fetch(port: server.ports.http, "/live/hls.m3u8").text
        print(ended)
        #expect(ended.contains("#EXT-X-TARGETDURATION:6"))
        #expect(ended.contains("#EXT-X-DISCONTINUITY\n"), "the republish is marked")
        let durations = ended.split(separator: "\n").filter { $0.hasPrefix("#EXTINF:") }
            .compactMap { Double($0.dropFirst(8).dropLast()) }
        #expect(durations.allSatisfy { $0.rounded() <= 6 })
        // The whole ended playlist decodes without an error (ffmpeg stops at ENDLIST).
        let decode = try Tool("ffmpeg", ["-hide_banner", "-v", "error", "-i", url, "-f", "null", "-"])
        #expect(await decode.wait(timeout: .seconds(30)) == 0)
        #expect(decode.errorOutput.isEmpty, "decode errors: \(decode.errorOutput.prefix(500))")
        // Unknown names and segments that do not exist are 404s.
        #expect(try await HTTPGet.fetch(port: server.ports.http, "/live/nothing.m3u8").status == 404)
        #expect(try await HTTPGet.fetch(port: server.ports.http, "/live/hls-99999.ts").status == 404)
        #expect(try await HTTPGet.fetch(port: server.ports.http, "/live/hls-x.ts").status == 404)
    }
}
