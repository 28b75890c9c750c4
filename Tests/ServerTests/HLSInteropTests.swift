import Foundation
import Server
import StreamHub
import Testing
import TestSupport

/// ffmpeg publishes RTMP; ffprobe and ffmpeg read both HLS renditions LiveSwarm makes of it: MPEG-TS at
/// `/live/STREAM.m3u8` and low-latency CMAF at `/live/STREAM/index.m3u8`.
@Suite(.serialized, .timeLimit(.minutes(5))) struct HLSInteropTests {
    struct Rendition: CustomTestStringConvertible, Sendable {
        var name: String
        var playlist: @Sendable (String) -> String
        var segmentSuffix: String
        var contentType: String
        /// Where the playlist's relative URIs point.
        var base: @Sendable (String) -> String
        var testDescription: String { name }

        static let ts = Rendition(name: "MPEG-TS", playlist: { "/live/\($0).m3u8" }, segmentSuffix: ".ts",
                                  contentType: "video/mp2t", base: { _ in "/live/" })
        static let cmaf = Rendition(name: "CMAF", playlist: { "/live/\($0)/index.m3u8" }, segmentSuffix: ".m4s",
                                    contentType: "video/mp4", base: { "/live/\($0)/" })
    }

    @Test(arguments: [Rendition.ts, .cmaf])
    func ffmpegPlaysTheLivePlaylistAcrossARepublish(rendition: Rendition) async throws {
        let server = try await TestServer.start { $0.hub.republishGrace = .seconds(3) }
        defer { Task { await server.stop() } }
        let path = rendition.playlist("hls")
        let url = "\(server.httpURL)\(path)"
        let first = try Tool.publisher(url: "\(server.rtmpURL)/live/hls", seconds: 6, gop: 30)
        try await server.waitUntil("two HLS segments", timeout: .seconds(20)) {
            (try? await HTTPGet.fetch(port: server.ports.http, path))?.text.components(separatedBy: "#EXTINF").count ?? 0 >= 3
        }
        // While live: ffprobe reads the stream's shape through the playlist.
        let probe = try await Probe.run(url)
        #expect(probe.video?.codec_name == "h264" && probe.video?.width == 640 && probe.video?.height == 360)
        #expect(probe.audio?.codec_name == "aac")
        let live = try await HTTPGet.fetch(port: server.ports.http, path)
        #expect(live.headers["content-type"] == "application/vnd.apple.mpegurl")
        #expect(live.headers["cache-control"] == "no-cache")
        #expect(!live.text.contains("#EXT-X-ENDLIST"))
        let segmentName = try #require(live.text.split(separator: "\n").first { $0.hasSuffix(rendition.segmentSuffix) })
        // A player on another origin may read the playlist and the media (CORS).
        let segment = try await HTTPGet.fetch(port: server.ports.http, rendition.base("hls") + segmentName,
                                              headers: ["Origin": "http://player.example"])
        #expect(segment.headers["access-control-allow-origin"] == "*")
        #expect(segment.status == 200 && segment.headers["content-type"] == rendition.contentType)
        #expect(segment.headers["cache-control"]?.contains("immutable") == true)
        if rendition.segmentSuffix == ".ts" {
            #expect(segment.body.count % 188 == 0 && segment.body.first == 0x47)
        } else {
            #expect(String(decoding: segment.body[4..<8], as: UTF8.self) == "moof")
            #expect(live.text.contains("#EXT-X-PART-INF:PART-TARGET=0.500"))
            #expect(live.text.contains("#EXT-X-PRELOAD-HINT:TYPE=PART"))
            // Every chunk's published SHA-256 is that of the bytes served, and the part says it too.
            let list = try await HTTPGet.fetch(port: server.ports.http, "/api/v1/streams/live/hls/chunks")
            let chunks = try JSONDecoder().decode(ChunkListing.self, from: list.body)
            #expect(chunks.initSections.first?.codecs.hasPrefix("avc1.") == true)
            try #require(chunks.chunks.count >= 4)
            #expect(Set(chunks.chunks.map(\.id)).count == chunks.chunks.count)
            for chunk in chunks.chunks.prefix(4) {
                let part = try await HTTPGet.fetch(port: server.ports.http, rendition.base("hls") + chunk.uri)
                let digest = ReferenceSHA256.hash(part.body)
                #expect(digest.map { String(format: "%02x", $0) }.joined() == chunk.sha256)
                #expect(part.headers["repr-digest"] == "sha-256=:\(Data(digest).base64EncodedString()):")
                #expect(part.body.count == chunk.bytes && chunk.id == "\(chunk.segment).\(chunk.part)")
            }
        }

        // The publisher comes back within the grace period, then leaves for good.
        #expect(await first.wait(timeout: .seconds(20)) == 0)
        let second = try Tool.publisher(url: "\(server.rtmpURL)/live/hls", seconds: 5, gop: 30)
        #expect(await second.wait(timeout: .seconds(20)) == 0)
        try await server.waitUntil("the playlist to end", timeout: .seconds(15)) {
            (try? await HTTPGet.fetch(port: server.ports.http, path))?.text.contains("#EXT-X-ENDLIST") == true
        }
        let ended = try await HTTPGet.fetch(port: server.ports.http, path).text
        print(ended)
        #expect(ended.contains("#EXT-X-TARGETDURATION:6"))
        #expect(ended.contains("#EXT-X-DISCONTINUITY\n"), "the republish is marked")
        if rendition.segmentSuffix == ".m4s" {
            // The new session has its own init section, announced after the discontinuity.
            #expect(ended.components(separatedBy: "#EXT-X-MAP:").count == 3)
        }
        let durations = ended.split(separator: "\n").filter { $0.hasPrefix("#EXTINF:") }
            .compactMap { Double($0.dropFirst(8).dropLast()) }
        #expect(durations.allSatisfy { $0.rounded() <= 6 })
        // Both sessions (6 s and 5 s) are in the window, with nothing lost or added.
        #expect(abs(durations.reduce(0, +) - 11) < 0.6, "the playlist lists \(durations.reduce(0, +)) s")
        // The whole ended playlist, across the discontinuity, decodes without an error (ffmpeg stops at ENDLIST).
        // Frames keep their 90 kHz timestamps on the way to the null muxer (`-enc_time_base -1`): by default ffmpeg
        // rounds them to a 1/30 s grid, and RTMP's millisecond timestamps (33 and 34 ms apart) whose phase after the
        // republish gap sits at half a slot put two frames in one slot ("191 >= 191", seen in CI with the packets
        // printed below: 6.373 s and 6.406 s are slots 190.50 and 191.49). Equal or backward timestamps still fail.
        let decode = try Tool("ffmpeg", ["-hide_banner", "-v", "error", "-i", url, "-enc_time_base", "-1", "-f", "null", "-"])
        #expect(await decode.wait(timeout: .seconds(30)) == 0)
        #expect(decode.errorOutput.isEmpty, "decode errors: \(decode.errorOutput.prefix(500))")
        if !decode.errorOutput.isEmpty {
            // Every packet's stream, timestamps and flags as ffprobe reads them, to find the cause.
            let probe = try Tool("ffprobe", ["-v", "error", "-show_entries", "packet=stream_index,pts_time,dts_time,flags",
                                             "-of", "csv=p=0", url])
            _ = await probe.wait(timeout: .seconds(30))
            print("ffprobe packets of the ended playlist (stream, pts, dts, flags):\n\(probe.output)")
        }
        // Unknown names and segments that do not exist are 404s.
        #expect(try await HTTPGet.fetch(port: server.ports.http, rendition.playlist("nothing")).status == 404)
        #expect(try await HTTPGet.fetch(port: server.ports.http, rendition.base("hls") + "hls-99999.ts").status == 404)
        #expect(try await HTTPGet.fetch(port: server.ports.http, rendition.base("hls") + "seg-99999.m4s").status == 404)
    }

    /// ffmpeg decodes half a minute of each live playlist, both at once, with no error; both keep up with live. (A
    /// minute until CI passed 45 minutes: the soak, scripts/soak.sh, has ffmpeg read both playlists every minute
    /// for an hour.)
    @Test func ffmpegDecodesHalfAMinuteOfEachPlaylist() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let publisher = try Tool.publisher(url: "\(server.rtmpURL)/live/minute", seconds: 50, gop: 30)
        defer { publisher.kill() }
        try await server.waitUntil("a CMAF part", timeout: .seconds(20)) {
            (try? await HTTPGet.fetch(port: server.ports.http, "/live/minute.m3u8"))?.status == 200
        }
        var readers: [(String, Tool, URL)] = []
        for (name, path) in [("MPEG-TS", "/live/minute.m3u8"), ("CMAF", "/live/minute/index.m3u8")] {
            let progress = FileManager.default.temporaryDirectory.appendingPathComponent("liveswarm-progress-\(UUID().uuidString)")
            let t = try Tool("ffmpeg", ["-hide_banner", "-v", "error", "-i", "\(server.httpURL)\(path)", "-t", "30",
                                        "-progress", progress.path, "-f", "null", "-"])
            readers.append((name, t, progress))
        }
        for (name, reader, progress) in readers {
            let status = await reader.wait(timeout: .seconds(70))
            let report = (try? String(contentsOf: progress, encoding: .utf8)) ?? ""
            try? FileManager.default.removeItem(at: progress)
            let frames = report.split(separator: "\n").last { $0.hasPrefix("frame=") }.flatMap { Int($0.dropFirst(6)) } ?? 0
            print("\(name): ffmpeg decoded \(frames) frames of 30 s, exit \(status), stderr: \(reader.errorOutput.isEmpty ? "empty" : reader.errorOutput)")
            #expect(status == 0, "\(name)")
            #expect(reader.errorOutput.isEmpty, "\(name) decode errors: \(reader.errorOutput.prefix(500))")
            #expect(frames >= 895, "\(name): \(frames) frames")
        }
    }

    /// Bad HLS requests get a 400 or 404 at once; a legitimate blocking request that cannot be satisfied gets a
    /// 503 at the blocking limit, never a hang.
    @Test func badRequestsAreAnsweredQuickly() async throws {
        let server = try await TestServer.start { $0.hls.targetDuration = 1; $0.hls.minimumDuration = 500 }
        defer { Task { await server.stop() } }
        let publisher = try Tool.publisher(url: "\(server.rtmpURL)/live/bad", seconds: 30, gop: 15)
        defer { publisher.kill() }
        try await server.waitUntil("a CMAF playlist", timeout: .seconds(20)) {
            (try? await HTTPGet.fetch(port: server.ports.http, "/live/bad/index.m3u8"))?.status == 200
        }
        let cases: [(String, Int)] = [
            ("/live/none/index.m3u8", 404),
            ("/live/none.m3u8", 404),
            ("/live/bad/index.m3u8?_HLS_msn=99999", 400),
            ("/live/bad/index.m3u8?_HLS_msn=-1", 400),
            ("/live/bad/index.m3u8?_HLS_msn=abc", 400),
            ("/live/bad/index.m3u8?_HLS_msn=", 400),
            ("/live/bad/index.m3u8?_HLS_msn=1e3", 400),
            ("/live/bad/index.m3u8?_HLS_msn=99999999999999999999999", 400),
            ("/live/bad/index.m3u8?_HLS_part=1", 400),
            ("/live/bad/index.m3u8?_HLS_msn=0&_HLS_part=x", 400),
            ("/live/bad.m3u8?_HLS_msn=0&_HLS_part=0", 400),
            ("/live/bad/part-99999.0.m4s", 400),
            ("/live/bad/part-0.m4s", 404),
            ("/live/bad/part-a.b.m4s", 404),
            ("/live/bad/seg-0.mp4", 404),
            ("/live/bad/init-7.mp4", 404),
            ("/live/bad/nothing.txt", 404),
            ("/live/b%20d/index.m3u8", 400),
        ]
        for (path, status) in cases {
            let start = ContinuousClock.now
            let response = try await HTTPGet.fetch(port: server.ports.http, path)
            let took = ContinuousClock.now - start
            #expect(response.status == status, "\(path): \(response.status) \(response.text.prefix(120))")
            #expect(took < .seconds(1), "\(path) took \(took)")
        }
        // A part that has left the window is a 404 at once: wait until segment 0 is gone.
        try await server.waitUntil("segment 0 to leave memory", timeout: .seconds(25)) {
            (try? await HTTPGet.fetch(port: server.ports.http, "/live/bad/seg-0.m4s"))?.status == 404
        }
        #expect(try await HTTPGet.fetch(port: server.ports.http, "/live/bad/part-0.0.m4s").status == 404)
        #expect(try await HTTPGet.fetch(port: server.ports.http, "/live/bad-0.ts").status == 404)
        // A blocking reload for the next segment is answered as soon as it exists (well within 2 s).
        let playlist = try await HTTPGet.fetch(port: server.ports.http, "/live/bad/index.m3u8").text
        let sequence = try #require(playlist.split(separator: "\n").first { $0.hasPrefix("#EXT-X-MEDIA-SEQUENCE:") }.flatMap { Int($0.dropFirst(22)) })
        let complete = playlist.components(separatedBy: "#EXTINF").count - 1
        let start = ContinuousClock.now
        let blocked = try await HTTPGet.fetch(port: server.ports.http, "/live/bad/index.m3u8?_HLS_msn=\(sequence + complete)")
        #expect(blocked.status == 200 && blocked.text.contains("seg-\(sequence + complete).m4s"))
        #expect(ContinuousClock.now - start < .seconds(2))
        // When the publisher stops for good, waiting requests get the ended playlist; with no publisher at all a
        // request blocked past the limit (3 target durations = 3 s here) gets 503.
        publisher.kill()
        let next = sequence + complete + 2
        let waiting = Task { try await HTTPGet.fetch(port: server.ports.http, "/live/bad/index.m3u8?_HLS_msn=\(next)") }
        let waited = ContinuousClock.now
        let answer = try await waiting.value
        #expect([200, 503].contains(answer.status))
        #expect(ContinuousClock.now - waited < .seconds(5))
        #expect(server.swarm.hls.waitingRequests == 0)
    }
}

/// `GET /api/v1/streams/APP/STREAM/chunks`.
struct ChunkListing: Decodable {
    struct InitSection: Decodable { var id: Int; var uri: String; var codecs: String; var bytes: Int }
    struct Chunk: Decodable {
        var id: String
        var uri: String
        var segment: Int
        var part: Int
        var duration: Double
        var independent: Bool
        var bytes: Int
        var sha256: String
    }
    var stream: String
    var initSections: [InitSection]
    var chunks: [Chunk]
}
