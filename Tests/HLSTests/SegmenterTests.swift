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

    /// `seconds` of video (25 fps unless `frameInterval` says otherwise, millisecond timestamps rounded as
    /// ffmpeg writes them) with a keyframe every `gop` frames or `gopSeconds`, and AAC at about 43 frames/s.
    /// `each` runs after every frame.
    @discardableResult
    static func feed(_ s: inout Segmenter, from: Int = 0, seconds: Int, gop: Int? = nil, gopSeconds: Int = 1,
                     frameInterval: Double = 40, config: Bool = true, each: (Segmenter) -> Void = { _ in }) -> [Segment] {
        var done: [Segment] = []
        if config {
            done += [s.add(frame(.video, avcConfig, ts: from)), s.add(frame(.audio, aacConfig, ts: from))].compactMap { $0 }
        }
        let frames = Int((Double(seconds * 1000) / frameInterval).rounded())
        let gop = gop ?? Int((Double(gopSeconds * 1000) / frameInterval).rounded())
        var audioTs = from
        for i in 0..<frames {
            let ts = from + Int((Double(i) * frameInterval).rounded())
            done += [s.add(video(key: i % gop == 0, ts: ts))].compactMap { $0 }
            each(s)
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
        // 18 s (three target durations) of 2 s segments: all nine are listed.
        #expect(p.targetDuration == 6 && p.mediaSequence == 0 && p.entries.count == 9 && p.independentSegments)
        Self.feed(&s, from: 20000, seconds: 4, gop: 25, config: false)
        #expect(s.playlist.mediaSequence == 2 && s.playlist.entries.count == 9)
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
        s.endSession()  // frames are muxed when their part closes
        #expect(s.droppedFrames == 1)
    }

    /// At 30 fps with 1 s GOPs, each GOP is two parts of exactly 15 frames; only the first starts with the IDR
    /// and only it says INDEPENDENT. Each part is one `moof` + `mdat` with its published SHA-256, and the fMP4
    /// segment is its parts back to back.
    @Test func partsSplitGOPsAndOnlyIDRPartsAreIndependent() throws {
        var s = Segmenter(name: "cam")
        Self.feed(&s, seconds: 10, gopSeconds: 1, frameInterval: 100.0 / 3)
        let parts = s.segments.flatMap(\.parts)
        #expect(parts.count == 4 * 4)
        #expect(parts.allSatisfy { $0.duration == 0.5 })
        for p in parts {
            #expect(p.independent == (p.index % 2 == 0), "part \(p.id)")
            let boxes = Self.topLevelBoxes(p.data)
            #expect(boxes == ["moof", "mdat"])
            #expect(try Self.firstVideoSampleIsSync(p.data) == p.independent, "part \(p.id)")
            #expect(ReferenceSHA256.hash(p.data.readableBytesView) == p.sha256)
        }
        #expect(Set(parts.map(\.id)).count == parts.count)
        // Irregular keyframes (every 0.7 s at 25 fps) still never make a part longer than the target.
        var t = Segmenter(name: "cam")
        Self.feed(&t, seconds: 10, gop: 18)
        #expect(t.segments.flatMap(\.parts).allSatisfy { $0.duration <= 0.5 && $0.duration > 0 })
    }

    /// What the origin announces to P2P viewers: every part once, in order, as it is made, with the bytes, hash and
    /// place (its segment's program date-time plus the parts before it) that the playlist gives it.
    @Test func everyPartIsAnnouncedOnceInOrderWithWhatThePlaylistSays() {
        var s = Segmenter(name: "cam")
        var announced: [PartNotice] = []
        var mark = s.nextPart
        Self.feed(&s, seconds: 10, gopSeconds: 1, frameInterval: 100.0 / 3) { now in
            announced += now.parts(since: mark)
            mark = now.nextPart
        }
        let finished = s.segments.flatMap(\.parts)
        #expect(announced.count == finished.count + s.openPartCount)
        #expect(announced.prefix(finished.count).map(\.id) == finished.map(\.id))
        for seg in s.segments {
            var wall = Double(seg.programDateTime)
            for p in seg.parts {
                let a = announced.first { $0.id == p.id }
                #expect(a?.sha256 == p.sha256 && a?.bytes == p.data.readableBytes && a?.independent == p.independent, "part \(p.id)")
                #expect(a?.wallClock == Int64(wall.rounded()) && a?.initID == seg.initID && a?.durationMs == 500, "part \(p.id)")
                wall += p.duration * 1000
            }
        }
        // Asked again with nothing new, nothing is announced twice.
        #expect(s.parts(since: s.nextPart).isEmpty)
    }

    @Test func blockingReloadConditions() {
        var s = Segmenter(name: "cam")
        #expect(!s.contains(segment: 0, part: 0))
        Self.feed(&s, seconds: 5, gopSeconds: 1, frameInterval: 100.0 / 3)  // segments 0, 1 done; 2 in progress
        #expect(s.contains(segment: 1, part: nil) && !s.contains(segment: 2, part: nil))
        #expect(s.contains(segment: 2, part: 0) && !s.contains(segment: 2, part: s.openPartCount))
        // Past the last part of a finished segment: satisfied by the next segment's first part.
        #expect(s.contains(segment: 1, part: 9))
        #expect(s.nextPart == (2, s.openPartCount))
        #expect(s.part(segment: 2, index: 0) != nil && s.part(segment: 1, index: 3) != nil && s.part(segment: 1, index: 4) == nil)
    }

    /// The size and kind of the top-level boxes of a fragment.
    static func topLevelBoxes(_ data: ByteBuffer) -> [String] {
        var b = data
        var types: [String] = []
        while let size = b.getInteger(at: b.readerIndex, as: UInt32.self), size >= 8, Int(size) <= b.readableBytes {
            types.append(b.getString(at: b.readerIndex + 4, length: 4) ?? "?")
            b.moveReaderIndex(forwardBy: Int(size))
        }
        return b.readableBytes == 0 ? types : types + ["trailing bytes"]
    }

    /// moof > traf (track 1) > trun: whether its first sample's flags say sync (ISO/IEC 14496-12 8.8.8).
    static func firstVideoSampleIsSync(_ data: ByteBuffer) throws -> Bool {
        func child(_ type: String, in b: ByteBuffer, from: Int, to: Int) -> (Int, Int)? {
            var i = from
            while i + 8 <= to, let size = b.getInteger(at: i, as: UInt32.self), size >= 8 {
                if b.getString(at: i + 4, length: 4) == type { return (i + 8, i + Int(size)) }
                i += Int(size)
            }
            return nil
        }
        let end = data.readerIndex + data.readableBytes
        let moof = try #require(child("moof", in: data, from: data.readerIndex, to: end))
        let traf = try #require(child("traf", in: data, from: moof.0, to: moof.1))
        let trun = try #require(child("trun", in: data, from: traf.0, to: traf.1))
        let flags = try #require(data.getInteger(at: trun.0, as: UInt32.self)) & 0xFFFFFF
        try #require(flags & 0x400 != 0, "per-sample flags")
        var at = trun.0 + 8  // version/flags, sample_count
        if flags & 0x1 != 0 { at += 4 }  // data_offset
        if flags & 0x4 != 0 { at += 4 }  // first_sample_flags
        if flags & 0x100 != 0 { at += 4 }  // duration
        if flags & 0x200 != 0 { at += 4 }  // size
        let sampleFlags = try #require(data.getInteger(at: at, as: UInt32.self))
        return sampleFlags & 0x0001_0000 == 0  // sample_is_non_sync_sample clear
    }

    /// Real ffmpeg output through the segmenter; ffprobe and ffmpeg read the playlist of each rendition.
    @Test(arguments: [false, true]) func ffmpegReadsThePlaylist(cmaf: Bool) throws {
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
            let fmp4 = seg.parts.flatMap { Array($0.data.readableBytesView) }
            try Data(fmp4).write(to: dir.appendingPathComponent(Segmenter.segmentURI(seg.sequence)))
        }
        for section in s.initSections {
            try Data(section.data.readableBytesView).write(to: dir.appendingPathComponent(Segmenter.initURI(section.id)))
        }
        #expect(s.initSections.map(\.codecs) == ["avc1.64000d,mp4a.40.2"])
        let playlist = dir.appendingPathComponent("test.m3u8").path
        // Ended, so that ffmpeg reads the window and stops instead of waiting for the live playlist to grow.
        var ended = cmaf ? s.lowLatencyPlaylist : s.playlist
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
        #expect(abs(s.playlist.entries.compactMap(\.duration).reduce(0, +) - 9) < 0.1)
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
