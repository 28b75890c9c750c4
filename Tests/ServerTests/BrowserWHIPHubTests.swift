import Foundation
import Server
import StreamHub
import Testing
import TestSupport

/// A browser's WHIP stream as a hub stream: Chromium publishes H.264 and Opus from the WHIP page's canvas (a moving
/// clock) and a tone, and ffmpeg reads it back over RTMP, HTTP-FLV, HLS and LL-HLS.
@Suite(.serialized, .timeLimit(.minutes(5))) struct BrowserWHIPHubTests {
    struct Sample: Decodable {
        var f: Int
        var t: Double
    }

    /// Frames ffprobe decoded from `seconds` of `url`: their times and which were keyframes.
    struct Decoded {
        var times: [Double]
        var keyframes: [Double]
        var audio: [Double]
        /// Each decoded video frame's width, in decoding order.
        var widths: [Int] = []
        var fps: Double { times.count > 1 ? Double(times.count - 1) / (times.last! - times.first!) : 0 }
        var span: Double { (times.last ?? 0) - (times.first ?? 0) }
        var maxGap: Double { zip(times, times.dropFirst()).map { $1 - $0 }.max() ?? .infinity }
        var maxAudioGap: Double { zip(audio, audio.dropFirst()).map { $1 - $0 }.max() ?? .infinity }
        var keyframeIntervals: [Double] { zip(keyframes, keyframes.dropFirst()).map { $1 - $0 } }

        static func read(_ url: String, seconds: Int) async throws -> Decoded {
            // Video frames decoded (with their key flag), and audio packets, from the first `seconds` of media.
            let out = try await Tool.run("ffprobe", ["-v", "error", "-read_intervals", "%+\(seconds)",
                                                     "-show_entries", "frame=media_type,pts_time,key_frame,width", "-of", "csv=p=0", url],
                                         timeout: .seconds(Int64(seconds) + 40))
            var d = Decoded(times: [], keyframes: [], audio: [])
            for line in out.split(separator: "\n") {
                let f = line.split(separator: ",").map(String.init)
                // ffprobe writes its fields in its own order: media_type, key_frame, pts_time.
                guard f.count >= 3, let t = Double(f[2]) else { continue }
                if f[0] == "video" {
                    d.times.append(t)
                    if f[1] == "1" { d.keyframes.append(t) }
                    if f.count >= 4, let w = Int(f[3]) { d.widths.append(w) }
                } else if f[0] == "audio" {
                    d.audio.append(t)
                }
            }
            d.times.sort()
            d.audio.sort()
            return d
        }
    }

    static func samples(_ t: Tool) -> [Sample] {
        t.errorOutput.split(separator: "\n").compactMap { line in
            guard line.contains("script-at"), let r = line.range(of: "returned ") else { return nil }
            return try? JSONDecoder().decode(Sample.self, from: Data(line[r.upperBound...].utf8))
        }
    }

    @Test func everyHubProtocolPlaysABrowsersWHIPStream() async throws {
        let server = try await TestServer.start { $0.apiToken = PushTests.token }
        defer { Task { await server.stop() } }
        let probe = "return {f: window.webrtcStats().framesEncoded || 0, t: performance.now() / 1000}"
        let publisher = try Tool.drive(url: "\(server.httpURL)/webrtc/?role=publish&stream=live/browser&size=640x360&color=c02020&tone=440",
                                       seconds: 70, statsJS: "return window.webrtcStats()", scripts: ["12:\(probe)", "50:\(probe)"],
                                       flags: ["--autoplay-policy=no-user-gesture-required"])
        defer { publisher.kill(SIGTERM) }
        try await server.waitForStream(StreamKey(app: "live", stream: "browser")!, timeout: .seconds(30))
        // Three 2-second segments in the HLS window before HLS is read.
        try await Task.sleep(for: .seconds(8))
        let urls = [("RTMP", "\(server.rtmpURL)/live/browser"), ("HTTP-FLV", "\(server.httpURL)/live/browser.flv"),
                    ("HLS", "\(server.httpURL)/live/browser.m3u8"), ("LL-HLS", "\(server.httpURL)/live/browser/index.m3u8")]
        for (name, url) in urls {
            let p = try await Probe.run(url)
            #expect(p.video?.codec_name == "h264" && p.video?.width == 640 && p.video?.height == 360, "\(name): \(p.streams)")
            #expect(p.audio?.codec_name == "aac" && p.audio?.sample_rate == "48000" && p.audio?.channels == 2, "\(name): \(p.streams)")
        }
        // 20 s of each, all four at once.
        let decoded = try await withThrowingTaskGroup(of: (String, Decoded).self) { group in
            for (name, url) in urls { group.addTask { (name, try await Decoded.read(url, seconds: 20)) } }
            var all: [String: Decoded] = [:]
            for try await (name, d) in group { all[name] = d }
            return all
        }
        // The publisher's frame rate between its two samples (12 s and 50 s into its page), which span the reads.
        let deadline = ContinuousClock.now + .seconds(60)
        while Self.samples(publisher).count < 2, ContinuousClock.now < deadline { try await Task.sleep(for: .seconds(1)) }
        let s = Self.samples(publisher)
        try #require(s.count == 2, "the publisher's samples: \(publisher.errorOutput.suffix(1500))")
        let encodedFPS = Double(s[1].f - s[0].f) / (s[1].t - s[0].t)
        let api = try await HTTPGet.fetch(port: server.ports.http, "/api/v1/webrtc/streams").text
        print("WHIP to hub: the publisher encoded \(String(format: "%.1f", encodedFPS)) frames/s; ingest \(api)")
        for (name, _) in urls {
            let d = try #require(decoded[name])
            let intervals = d.keyframeIntervals.map { String(format: "%.2f", $0) }
            print("""
                \(name): \(d.times.count) frames over \(String(format: "%.1f", d.span)) s, \(String(format: "%.1f", d.fps)) fps \
                (\(String(format: "%.1f", d.fps / encodedFPS * 100)) % of encoded), longest gap \(String(format: "%.3f", d.maxGap)) s, \
                keyframes every \(intervals) s, audio frames \(d.audio.count), longest audio gap \(String(format: "%.3f", d.maxAudioGap)) s
                """)
            #expect(d.span >= 18, "\(name): \(d.span) s of video")
            #expect(d.fps >= 0.95 * encodedFPS, "\(name): \(d.fps) fps decoded against \(encodedFPS) encoded")
            #expect(d.maxGap < 1, "\(name): a gap of \(d.maxGap) s")
            #expect(d.maxAudioGap < 0.05, "\(name): an audio gap of \(d.maxAudioGap) s")
            // Keyframes come on the ingest's requests, about every 2 s (the segmenter's shortest segment).
            let sorted = d.keyframeIntervals.sorted()
            if !sorted.isEmpty {
                let median = sorted[sorted.count / 2]
                #expect(median >= 1.9 && median <= 2.6, "\(name): keyframe intervals \(intervals)")
            }
        }
        // The WHIP stream pushed to another RTMP server (ffmpeg listening) as an RTMP stream would be.
        let port = try PushTests.freeTCPPort()
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("whip-push-\(UUID().uuidString).flv").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        let listener = try PushTests.listener(port: port, file: file)
        defer { listener.kill() }
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await PushTests.push(server, "live/browser", #"{"url": "rtmp://127.0.0.1:\#(port)/live/target"}"#).status == 201)
        let pushed = try await PushTests.recorded(file, bytes: 50_000)
        #expect(pushed.video?.codec_name == "h264" && pushed.video?.width == 640 && pushed.audio?.codec_name == "aac", "\(pushed.streams)")
        #expect(api.contains("\"framesGivenUp\":0") && api.contains("\"configurations\":1") && api.contains("\"brokenFrames\":0"), "\(api)")
    }

    struct LiveStats: Decodable {
        struct Clock: Decodable {
            struct Window: Decodable { var medianMs: Double?; var decoded: Int? }
            var framesDecoded: Int
            var framesCorrupt: Int
            var window: Window
        }
        struct Frames: Decodable { var total: Int; var dropped: Int }
        var clock: Clock?
        var frames: Frames?
    }

    /// The publisher draws the glass clock: its delay to an HTTP-FLV reader (ffmpeg, no jitter buffer) and to the
    /// LL-HLS player in Chromium is printed. The publisher's canvas then shrinks from 640x360 to 480x270: a new
    /// sequence header and init section, and every viewer goes on (ffmpeg over HTTP-FLV and LL-HLS, Chromium's MSE).
    @Test func glassToGlassDelayAndAResolutionChange() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let publisher = try Tool.drive(url: "\(server.httpURL)/webrtc/?role=publish&stream=live/clock&size=640x360&clock=1&resize=32:480x270&tone=660",
                                       seconds: 70, statsJS: "return window.webrtcStats()",
                                       flags: ["--autoplay-policy=no-user-gesture-required"])
        defer { publisher.kill(SIGTERM) }
        try await server.waitForStream(StreamKey(app: "live", stream: "clock")!, timeout: .seconds(30))
        try await Task.sleep(for: .seconds(8))
        let probe = Tool.checkout.appendingPathComponent("tools/glass-clock/probe.py").path
        let flv = try await Tool.run("python3", [probe, "\(server.httpURL)/live/clock.flv", "--seconds", "8"], timeout: .seconds(40))
        print("glass to glass, WHIP to HTTP-FLV (ffmpeg, no jitter buffer): \(flv.trimmingCharacters(in: .whitespacesAndNewlines))")
        let flvSummary = try JSONSerialization.jsonObject(with: Data(flv.utf8)) as? [String: Any]
        #expect((flvSummary?["framesDecoded"] as? Int ?? 0) > 150, "\(flv)")
        // Across the resize (the publisher's page is about 20 s in): the LL-HLS player in Chromium and ffmpeg on both.
        let player = try Tool.drive(url: "\(server.httpURL)/live-http/?stream=live/clock&clock=1", seconds: 30, statsJS: "return window.liveStats()",
                                    scripts: ["0.5:document.getElementById('mse').click(); return 1", "8:return window.liveStats().frames.total"])
        let decoded = try await withThrowingTaskGroup(of: (String, Decoded).self) { group in
            // ffmpeg starts LL-HLS at the start of the playlist's window (about 18 s back): 45 s of media from there
            // end about as late as 25 s of HTTP-FLV from the live edge.
            for (name, url, seconds) in [("HTTP-FLV", "\(server.httpURL)/live/clock.flv", 25), ("LL-HLS", "\(server.httpURL)/live/clock/index.m3u8", 45)] {
                group.addTask { (name, try await Decoded.read(url, seconds: seconds)) }
            }
            var all: [String: Decoded] = [:]
            for try await (name, d) in group { all[name] = d }
            return all
        }
        let live = try await player.jsonResult(LiveStats.self, timeout: .seconds(90))
        let api = try await HTTPGet.fetch(port: server.ports.http, "/api/v1/webrtc/streams").text
        print("""
            glass to glass, WHIP to LL-HLS (Chromium's MSE player at its 2 s target): median \(live.clock?.window.medianMs ?? -1) ms \
            over the last 5 s, \(live.clock?.framesDecoded ?? 0) frames read, \(live.clock?.framesCorrupt ?? 0) unreadable; \
            \(live.frames?.total ?? 0) frames decoded, \(live.frames?.dropped ?? 0) dropped
            """)
        for (name, d) in decoded.sorted(by: { $0.key < $1.key }) {
            let sizes = Dictionary(grouping: d.widths, by: { $0 }).mapValues(\.count)
            print("\(name) across the resize: \(d.times.count) frames, widths \(sizes), longest gap \(String(format: "%.3f", d.maxGap)) s")
            #expect(sizes[640, default: 0] > 30 && sizes[480, default: 0] > 30, "\(name): \(sizes)")
            #expect(d.maxGap < 1, "\(name): a gap of \(d.maxGap) s")
            #expect(d.span >= 20, "\(name): \(d.span) s")
        }
        #expect(api.contains("\"configurations\":2") && api.contains("\"width\":480"), "\(api)")
        // The browser's player went on after the change: frames in the last 22 s, the clock still readable.
        let midway = player.errorOutput.split(separator: "\n").first { $0.contains("script-at 8") && $0.contains("returned") }
            .flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
        #expect((live.frames?.total ?? 0) - midway > 22 * 20, "frames decoded: \(midway) at 8 s, \(live.frames?.total ?? 0) at 30 s")
        #expect((live.clock?.window.decoded ?? 0) > 100 && live.clock?.window.medianMs != nil, "the clock read after the change")
    }

    /// Resolution changes Chromium makes by itself: with `degradation=maintain-framerate` and a 960x540 noise canvas
    /// on a busy machine, its encoder shrinks the picture within seconds (CPU adaptation: 640 -> 480 -> 320 wide
    /// here). ffmpeg reading HTTP-FLV from the start goes on through every change. When no change comes (a fast
    /// machine), that is said, not judged.
    @Test func aSpontaneousResolutionChangeKeepsHTTPFLVPlaying() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let publisher = try Tool.drive(url: "\(server.httpURL)/webrtc/?role=publish&stream=live/spont&size=960x540&noise=1&codec=h264&degradation=maintain-framerate&tone=440",
                                       seconds: 45, statsJS: "return window.webrtcStats()",
                                       flags: ["--autoplay-policy=no-user-gesture-required"])
        defer { publisher.kill(SIGTERM) }
        try await server.waitForStream(StreamKey(app: "live", stream: "spont")!, timeout: .seconds(30))
        let d = try await Decoded.read("\(server.httpURL)/live/spont.flv", seconds: 25)
        let api = try await HTTPGet.fetch(port: server.ports.http, "/api/v1/webrtc/streams").text
        let sizes = Dictionary(grouping: d.widths, by: { $0 }).mapValues(\.count)
        print("spontaneous: HTTP-FLV \(d.times.count) frames over \(String(format: "%.1f", d.span)) s, widths \(sizes), longest gap \(String(format: "%.3f", d.maxGap)) s; \(api)")
        // Where the long gaps were, against the size changes (frames in decoding order, which is time order here).
        var changes: [String] = []
        for i in 1..<min(d.widths.count, d.times.count) where d.widths[i] != d.widths[i - 1] {
            changes.append("\(d.widths[i - 1])->\(d.widths[i]) at \(String(format: "%.2f", d.times[i] - d.times[0])) s")
        }
        let gaps = zip(d.times, d.times.dropFirst()).filter { $1 - $0 > 0.3 }.map { String(format: "%.2f s at %.2f", $1 - $0, $0 - d.times[0]) }
        print("spontaneous: changes \(changes); gaps over 0.3 s: \(gaps)")
        // The first interval is the cached GOP's start (up to a second); after it, no gap of a second.
        let steadyGap = zip(d.times, d.times.dropFirst()).filter { $0.0 - d.times[0] >= 0.5 }.map { $1 - $0 }.max() ?? .infinity
        #expect(d.span >= 20 && steadyGap < 1, "HTTP-FLV: \(d.span) s, a gap of \(steadyGap) s")
        #expect(api.contains("\"framesGivenUp\":0") && api.contains("\"brokenFrames\":0"), "\(api)")
        if sizes.count >= 2 {
            #expect(!api.contains("\"configurations\":1,"), "the decoder saw \(sizes) but the ingest one configuration: \(api)")
        } else {
            print("spontaneous: Chromium kept one size (\(sizes)) this time: no change to judge")
        }
    }
}
