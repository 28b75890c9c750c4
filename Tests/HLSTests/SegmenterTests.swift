import Foundation
import FLV
@testable import HLS
import NIOCore
import StreamHub
import Testing
import TestSupport

/// The segmenter on synthetic streams (exact cuts) and on a real ffmpeg stream read back by ffprobe and ffmpeg.
@Suite struct SegmenterTests {
    /// The AVC sequence header ffmpeg 5.1 (libx264, 640x360 High) writes, and an AAC-LC 44.1 kHz stereo config.
    static let avcConfig = [UInt8](hex: "17000000000164001effe1001a6764001eacd940a02ff970110000030001000003003c0f162d9601000468ef8fcbfdf8f800")
    static let aacConfig: [UInt8] = [0xAF, 0x00, 0x12, 0x10]

    static func frame(_ kind: MediaFrame.Kind, _ bytes: [UInt8], ts: Int) -> MediaFrame {
        MediaFrame(kind: kind, timestamp: UInt32(ts), payload: ByteBuffer(bytes: bytes), receivedAt: 0)
    }

    /// An AVCC access unit with one slice NAL (IDR or not), as the TS muxer requires.
    static func video(key: Bool, ts: Int) -> MediaFrame {
        let nal: [UInt8] = key ? [0x65, 0x88, 0x84, 0x00] : [0x41, 0x9A, 0x02, 0x00]
        return frame(.video, [key ? 0x17 : 0x27, 1, 0, 0, 0, 0, 0, 0, UInt8(nal.count)] + nal, ts: ts)
    }

    static func audio(ts: Int) -> MediaFrame { frame(.audio, [0xAF, 1] + [UInt8](repeating: 0x21, count: 100), ts: ts) }

    /// `seconds` of 25 fps video with a keyframe every `gop` frames, and AAC at about 43 frames/s.
    static func feed(_ s: inout Segmenter, from: Int = 0, seconds: Int, gop: Int, config: Bool = true) -> [Segment] {
        var done: [Segment] = []
        if config {
            done += [s.add(frame(.video, avcConfig, ts: from)), s.add(frame(.audio, aacConfig, ts: from))].compactMap { $0 }
        }
        var audioTs = from
        for i in 0..<(seconds * 25) {
            let ts = from + i * 40
            done += [s.add(video(key: i % gop == 0, ts: ts))].compactMap { $0 }
            while audioTs <= ts {
                done += [s.add(audio(ts: audioTs))].compactMap { $0 }
                audioTs += 23
            }
        }
        return done
    }

    @Test func cutsAtTheFirstKeyframeAfterTheMinimum() {
        var s = Segmenter(name: "cam")
        let done = Self.feed(&s, seconds: 20, gop: 25)  // 1 s GOP
        #expect(done.count == 9)  // the tenth is still open
        #expect(done.allSatisfy { $0.duration == 2.0 && $0.independent && !$0.discontinuity })
        #expect(done.map(\.sequence) == Array(0..<9))
        // Every segment starts with the PAT (sync byte, PID 0).
        #expect(done.allSatisfy { Array($0.data.readableBytesView.prefix(3)) == [0x47, 0x40, 0x00] && $0.data.readableBytes % 188 == 0 })
        let p = s.playlist
        #expect(p.targetDuration == 6 && p.mediaSequence == 3 && p.entries.count == 6 && p.independentSegments)
        #expect(p.entries.last?.uri == "cam-8.ts")
        #expect(s.segment(0) != nil && s.segment(8) != nil)
    }

    @Test func longGOPsAreCutBeforeTheTargetDuration() {
        var s = Segmenter(name: "cam")
        let done = Self.feed(&s, seconds: 30, gop: 250)  // 10 s GOP, target 6 s
        #expect(!done.isEmpty)
        for seg in done {
            #expect(seg.duration.rounded() <= 6, "segment \(seg.sequence) lasts \(seg.duration) s")
        }
        #expect(done.contains { !$0.independent })
        #expect(!s.playlist.independentSegments)
    }

    @Test func republishIsADiscontinuityAndTheSequenceCountsIt() {
        var s = Segmenter(name: "cam")
        _ = Self.feed(&s, seconds: 5, gop: 25)
        let last = s.endSession()
        #expect(last != nil)
        _ = Self.feed(&s, from: 8000, seconds: 5, gop: 25)
        let marked = s.segments.filter(\.discontinuity)
        #expect(marked.count == 1)
        #expect(s.playlist.render().contains("#EXT-X-DISCONTINUITY\n"))
        #expect(s.playlist.discontinuitySequence == 0)
        _ = Self.feed(&s, from: 13000, seconds: 20, gop: 25, config: false)
        // Once the discontinuity has left the window, the playlist counts it.
        #expect(s.playlist.discontinuitySequence == 1)
        #expect(s.playlist.targetDuration == 6)
    }

    @Test func unsupportedCodecsAreNamedAndMalformedFramesDropped() {
        var s = Segmenter(name: "cam")
        s.add(Self.frame(.video, [0x90] + Array("hvc1".utf8) + [1, 2, 3], ts: 0))
        #expect(s.unsupported == ["video hevc"])
        _ = Self.feed(&s, seconds: 3, gop: 25)
        // A NAL length that runs past the end of the frame.
        s.add(Self.frame(.video, [0x27, 1, 0, 0, 0, 0, 0, 0x10, 0x00, 0x41], ts: 3000))
        #expect(s.droppedFrames == 1)
    }

    /// Real ffmpeg output through the segmenter; ffprobe and ffmpeg read the playlist.
    @Test func ffmpegReadsThePlaylist() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("liveswarm-hls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let flv = dir.appendingPathComponent("in.flv").path
        try Self.run("ffmpeg", ["-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
                                "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "9",
                                "-c:v", "libx264", "-g", "25", "-c:a", "aac", "-f", "flv", flv])
        var buffer = ByteBuffer(bytes: try Data(contentsOf: URL(fileURLWithPath: flv)))
        _ = try FLVHeader(parsing: &buffer)
        var s = Segmenter(name: "test")
        while let tag = try FLVTag.parse(from: &buffer) {
            let kind: MediaFrame.Kind = tag.type == .video ? .video : tag.type == .audio ? .audio : .metadata
            s.add(MediaFrame(kind: kind, timestamp: tag.timestamp, payload: tag.body, receivedAt: 0))
        }
        s.endSession()
        #expect(s.droppedFrames == 0 && s.unsupported.isEmpty)
        for seg in s.segments {
            try Data(seg.data.readableBytesView).write(to: dir.appendingPathComponent("test-\(seg.sequence).ts"))
        }
        let playlist = dir.appendingPathComponent("test.m3u8").path
        // Ended, so that ffmpeg reads the window and stops instead of waiting for the live playlist to grow.
        var ended = s.playlist
        ended.ended = true
        try ended.render().write(toFile: playlist, atomically: true, encoding: .utf8)
        let probe = try Self.run("ffprobe", ["-v", "error", "-show_entries", "stream=codec_name,width,height,sample_rate",
                                             "-of", "default=nw=1", playlist])
        #expect(probe.contains("codec_name=h264") && probe.contains("width=320") && probe.contains("height=240"))
        #expect(probe.contains("codec_name=aac") && probe.contains("sample_rate=44100"))
        // A live playlist has no total duration: measure the video packets ffprobe reads through it.
        let listing = try Self.run("ffprobe", ["-v", "error", "-select_streams", "v", "-show_entries", "packet=pts_time",
                                               "-of", "csv=p=0", playlist])
        let times = listing.split(whereSeparator: \.isNewline).compactMap { Double($0.trimmingCharacters(in: CharacterSet(charactersIn: ", "))) }
        let span = (times.max() ?? 0) - (times.min() ?? 0)
        #expect(times.count == 225, "video packets: \(times.count): \(listing.prefix(200))")
        #expect(abs(span - 8.96) < 0.05, "video spans \(span) s")
        #expect(abs(s.playlist.entries.map(\.duration).reduce(0, +) - 9) < 0.1)
        let decode = try Self.run("ffmpeg", ["-v", "error", "-nostdin", "-i", playlist, "-f", "null", "-"])
        #expect(decode.isEmpty, "decode errors: \(decode.prefix(400))")
    }

    /// Runs a real tool and returns its output; a missing tool or a failure fails the test with its output.
    @discardableResult
    static func run(_ tool: String, _ args: [String]) throws -> String {
        let (status, output) = try runTool(tool, args)
        try #require(status == 0, "\(tool) failed: \(output.prefix(400))")
        return output
    }
}
