import Foundation
import Server
import Testing
import TestSupport

/// RTMP audio to WebRTC with real peers: ffmpeg publishes AAC over RTMP, headless Chromium plays it through WHEP on
/// `web-demo/live`, and the page listens to every sample the track delivers for play-out
/// (`web-demo/shared/audio-meter.js` and `audio-analysis.js`, through MediaStreamTrackProcessor).
@Suite(.serialized, .timeLimit(.minutes(10))) struct BrowserBridgeAudioTests {
    struct Stats: Decodable {
        struct Player: Decodable {
            struct Audio: Decodable {
                var codec: String?
                var packetsReceived: Int?
                var packetsLost: Int?
                var totalSamplesReceived: Int?
                var concealedSamples: Int?
                var concealmentEvents: Int?
                var jitterBufferMs: Int?
            }
            var audio: Audio?
            var framesDecoded: Int?
            var jitterBufferMs: Int?
            var error: String?
        }
        struct Meter: Decodable {
            var frames: Int
            var sampleRate: Int
            var level: Double?
            var frequencies: [Double]
            var gaps: Int
            var gapMs: Int
            var clicks: Int
            var maxStep: Double
            var clickLimit: Double?
            var path: String?
            /// The first gaps and clicks: [kind, seconds on the page's clock, value].
            var events: [[Value]]
        }
        enum Value: Decodable, CustomStringConvertible {
            case text(String), number(Double)
            init(from decoder: any Decoder) throws {
                let c = try decoder.singleValueContainer()
                if let d = try? c.decode(Double.self) { self = .number(d) } else { self = .text(try c.decode(String.self)) }
            }
            var description: String {
                switch self {
                case .text(let t): t
                case .number(let n): String(format: "%.3f", n)
                }
            }
        }
        struct Sync: Decodable {
            var flashes: Int
            var beeps: Int
            var offsetsMs: [Double]
        }
        var player: Player?
        var meter: Meter?
        var sync: Sync?
        /// Video: [wall ms, framesDecoded, packetsReceived, packetsLost, ssrc, estimatedPlayoutTimestamp]; audio:
        /// [wall ms, totalSamplesReceived, packetsReceived, concealedSamples, estimatedPlayoutTimestamp], every 500 ms.
        var history: [[Double?]]
        var audioHistory: [[Double?]]
    }

    static func ffmpeg(_ arguments: [String]) throws -> Tool {
        try Tool.executable("/usr/bin/ffmpeg", ["-hide_banner", "-loglevel", "error", "-nostdin", "-re"] + arguments)
    }

    static func median(_ values: [Double]) -> Double? {
        let s = values.sorted()
        return s.isEmpty ? nil : s[s.count / 2]
    }

    /// The browser's play-out rate (samples per second, concealed ones included) in each 500 ms poll after the first
    /// two seconds. It follows the audio output's clock, not the packets: Chromium conceals what is missing and still
    /// counts it. Headless Chromium's output is a timer, which runs slow when the machine is starved (this VM shows
    /// CPU steal up to 40 %); then it cannot hear in real time whatever the server does.
    static func playoutRates(_ s: Stats) -> [Double] {
        let rows = s.audioHistory.compactMap { r -> (Double, Double)? in
            guard r.count > 1, let t = r[0], let n = r[1] else { return nil }
            return (t, n)
        }
        guard let first = rows.first?.0 else { return [] }
        return zip(rows, rows.dropFirst()).filter { $0.0.0 >= first + 2000 && $0.1.0 > $0.0.0 }.map { ($1.1 - $0.1) / (($1.0 - $0.0) / 1000) }
    }

    struct TranscoderAPI: Decodable {
        struct Stream: Decodable {
            struct Audio: Decodable {
                var longestInputGapMs: Double
                var transcodeDelayMeanMs: Double
                var transcodeDelayMaxMs: Double
            }
            var audioLongestSendGapMs: Double
            var audioSendGapsOver60ms: Int
            var audio: Audio?
        }
        var bridged: [Stream]
    }

    /// An audio-only stream (a 1 kHz sine, AAC at 44.1 kHz) heard for 30 s: samples arrive at 48 kHz, the page hears
    /// the tone's frequency second after second, with no gap and no click. Judged when the browser played out in
    /// real time (every 500 ms at 90 % of 48 kHz or more); a run where it could not is tried again, and if the
    /// second is starved too, it is reported as a known issue.
    @Test func aToneIsHeardWholeForThirtySeconds() async throws {
        for attempt in 1...2 {
            let server = try await TestServer.start()
            defer { Task { await server.stop() } }
            let publisher = try Self.ffmpeg(["-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=44100", "-t", "60",
                                             "-c:a", "aac", "-b:a", "128k", "-f", "flv", "\(server.rtmpURL)/live/tone"])
            defer { publisher.kill(SIGTERM) }
            try await server.waitUntil("live/tone to be live") {
                server.swarm.hub.snapshot().contains { $0.stream == "tone" && $0.published && $0.hasAudio }
            }
            let cpu = CPUSampler()
            let stats = try await Tool.drive(url: "\(server.httpURL)/live/?stream=live/tone&audio=1&tone=1000", seconds: 34,
                                             statsJS: "return window.liveStats()").jsonResult(Stats.self, timeout: .seconds(120))
            let busy = cpu.busyFraction()
            let api = try JSONDecoder().decode(TranscoderAPI.self, from: Data(try await HTTPGet.fetch(port: server.ports.http, "/api/v1/webrtc/streams").text.utf8))
            #expect(stats.player?.error == nil, "\(stats.player?.error ?? "")")
            let a = try #require(stats.player?.audio, "an inbound audio stream")
            let m = try #require(stats.meter, "the page listened")
            let rates = Self.playoutRates(stats)
            let slow = rates.filter { $0 < 48000 * 0.9 }
            let rate = rates.isEmpty ? 0 : rates.reduce(0, +) / Double(rates.count)
            let frequencies = m.frequencies
            let send = api.bridged.first
            print("""
                RTMP AAC (1 kHz, 44.1 kHz) to WebRTC Opus in Chromium, audio only, attempt \(attempt) (CPUs \(Int(busy * 100)) % busy):
                  \(a.codec ?? "-"); played out at \(Int(rate)) samples per second (\(slow.count) of \(rates.count) polls under 90 %); \
                packets \(a.packetsReceived ?? -1), lost \(a.packetsLost ?? -1), concealment events \(a.concealmentEvents ?? -1) \
                (\(a.concealedSamples ?? -1) samples), jitter buffer \(a.jitterBufferMs ?? -1) ms
                  heard \(String(format: "%.1f", Double(m.frames) / Double(m.sampleRate))) s: frequency median \
                \(String(format: "%.3f", Self.median(frequencies) ?? 0)) Hz (\(String(format: "%.3f", frequencies.min() ?? 0)) to \
                \(String(format: "%.3f", frequencies.max() ?? 0)), \(frequencies.count) one-second readings), level \
                \(String(format: "%.1f", 20 * log10(m.level ?? 1e-9))) dBFS RMS, gaps \(m.gaps) (\(m.gapMs) ms), clicks \(m.clicks) \
                (steepest step \(String(format: "%.4f", m.maxStep)), limit \(String(format: "%.4f", m.clickLimit ?? 0)))
                  listened through \(m.path ?? "-"); first gaps and clicks: \(m.events.map { $0.map(\.description).joined(separator: " ") }.joined(separator: ", "))
                  server: longest pause between audio sends \(String(format: "%.1f", send?.audioLongestSendGapMs ?? -1)) ms, \
                pauses over 60 ms \(send?.audioSendGapsOver60ms ?? -1); longest pause between access units from the publisher \
                \(String(format: "%.1f", send?.audio?.longestInputGapMs ?? -1)) ms; transcoding took \
                \(String(format: "%.2f", send?.audio?.transcodeDelayMeanMs ?? -1)) ms on average, at most \(String(format: "%.1f", send?.audio?.transcodeDelayMaxMs ?? -1)) ms
                """)
            #expect(a.codec?.hasPrefix("audio/opus/48000") == true)
            #expect(stats.player?.framesDecoded == nil, "no video in an audio-only stream")
            if !slow.isEmpty {
                if attempt == 1 { continue }
                withKnownIssue("the browser could not play out in real time twice (\(slow.count) slow polls): the tone not judged",
                               isIntermittent: true) {
                    #expect(slow.isEmpty && m.gaps == 0 && m.clicks == 0)
                }
                return
            }
            #expect(abs(rate - 48000) < 48000 * 0.02, "played out at \(rate) samples per second")
            #expect(frequencies.count >= 28, "\(frequencies.count) seconds of tone heard")
            #expect(frequencies.allSatisfy { abs($0 - 1000) < 1 }, "\(frequencies)")
            #expect(m.gaps == 0 && m.clicks == 0, "gaps \(m.gaps), clicks \(m.clicks)")
            return
        }
    }

    /// Lip sync: the picture flashes and a beep sounds at the same instants of the published stream
    /// (`tools/av-sync/publish.sh`). The page pairs each flash (the frame's expected display time) with each beep (the
    /// time its samples were delivered for play-out); Chromium's own view of the same is the difference of its audio
    /// and video `estimatedPlayoutTimestamp` (sender NTP, from our sender reports). Chromium's synchronization
    /// converges over its first seconds, so both are judged on the last 10 s, against the 40 ms at which viewers start
    /// to notice.
    @Test func audioAndVideoPlayInSync() async throws {
        for attempt in 1...2 where try await Self.lipSync(attempt: attempt) {
            return
        }
    }

    /// One run of the lip-sync test; false when the browser could not play out in real time (try again).
    static func lipSync(attempt: Int) async throws -> Bool {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let publisher = try Tool.executable("/bin/bash", [Tool.checkout.appendingPathComponent("tools/av-sync/publish.sh").path,
                                                          "\(server.rtmpURL)/live/sync", "70"])
        defer { publisher.kill(SIGTERM) }
        try await server.waitForStream(.init(app: "live", stream: "sync")!)
        let cpu = CPUSampler()
        let seconds = 36
        let stats = try await Tool.drive(url: "\(server.httpURL)/live/?stream=live/sync&sync=1", seconds: seconds,
                                         statsJS: "return window.liveStats()").jsonResult(Stats.self, timeout: .seconds(120))
        let busy = cpu.busyFraction()
        #expect(stats.player?.error == nil, "\(stats.player?.error ?? "")")
        let sync = try #require(stats.sync)
        let offsets = sync.offsetsMs
        let settled = Array(offsets.suffix(10))
        // Chromium's view: at each poll, the media time video plays minus the media time audio plays (positive: audio late).
        let video = Dictionary(stats.history.compactMap { r -> (Double, Double)? in
            guard r.count > 5, let t = r[0], let p = r[5] else { return nil }
            return (t, p)
        }, uniquingKeysWith: { a, _ in a })
        let chromium = stats.audioHistory.compactMap { r -> (Double, Double)? in
            guard r.count > 4, let t = r[0], let a = r[4], let v = video[t] else { return nil }
            return (t, v - a)
        }
        let lastChromium = chromium.filter { $0.0 >= (chromium.last?.0 ?? 0) - 10_000 }.map(\.1)
        print("""
            Lip sync, RTMP (x264 zerolatency, AAC 44.1 kHz) to WebRTC in Chromium, attempt \(attempt) (\(seconds) s, CPUs \(Int(busy * 100)) % busy):
              flashes \(sync.flashes), beeps \(sync.beeps); audio minus video per beep (ms): \(offsets.map { String(format: "%.0f", $0) }.joined(separator: " "))
              last 10 beeps: median \(String(format: "%.1f", Self.median(settled) ?? .nan)) ms; Chromium's estimated playout, video minus \
            audio over the last 10 s: median \(String(format: "%.1f", Self.median(lastChromium) ?? .nan)) ms
              jitter buffers at the end: audio \(stats.player?.audio?.jitterBufferMs ?? -1) ms, video \(stats.player?.jitterBufferMs ?? -1) ms
            """)
        let slow = Self.playoutRates(stats).filter { $0 < 48000 * 0.9 }
        if !slow.isEmpty && attempt == 1 {
            print("  the browser could not play out in real time (\(slow.count) slow polls): trying again")
            return false
        }
        // Without sender reports the page measured 150 ms (through Web Audio; docs/WEBRTC.md).
        let judge = {
            #expect(sync.flashes >= seconds - 6 && abs(sync.flashes - sync.beeps) <= 1 && offsets.count >= sync.beeps - 1,
                    "every flash has its beep: \(sync.flashes) flashes, \(sync.beeps) beeps, \(offsets.count) paired")
            #expect(lastChromium.count >= 15 && abs(Self.median(lastChromium) ?? .infinity) < 40,
                    "Chromium plays audio and video within 40 ms of each other: \(lastChromium)")
            #expect(settled.count == 10 && abs(Self.median(settled) ?? .infinity) < 40, "audio minus video \(settled)")
        }
        if slow.isEmpty {
            judge()
        } else {
            withKnownIssue("the browser could not play out in real time twice (\(slow.count) slow polls)", isIntermittent: true) { judge() }
        }
        return true
    }

    /// A video-only stream plays, and the page has no audio to hear.
    @Test func aVideoOnlyStreamPlays() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let publisher = try Self.ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-t", "60", "-c:v", "libx264",
                                         "-preset", "veryfast", "-tune", "zerolatency", "-g", "30", "-an", "-f", "flv", "\(server.rtmpURL)/live/mute"])
        defer { publisher.kill(SIGTERM) }
        try await server.waitForStream(.init(app: "live", stream: "mute")!)
        let stats = try await Tool.drive(url: "\(server.httpURL)/live/?stream=live/mute&audio=1", seconds: 6,
                                         statsJS: "return window.liveStats()").jsonResult(Stats.self, timeout: .seconds(60))
        #expect(stats.player?.error == nil, "\(stats.player?.error ?? "")")
        #expect((stats.player?.framesDecoded ?? 0) > 100, "\(stats.player?.framesDecoded ?? 0) frames")
        #expect(stats.player?.audio == nil && stats.meter == nil)
    }
}
