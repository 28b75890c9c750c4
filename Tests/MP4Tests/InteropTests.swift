import Codecs
import Foundation
import NIOCore
import Testing
import TestSupport
@testable import MP4

func temporaryDirectory() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("helper-mp4-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

/// `key=value` lines of `ffprobe -of default=nw=1` (the last value wins for repeated keys).
func probeValues(_ output: String) -> [String: [String]] {
    var values: [String: [String]] = [:]
    for line in output.split(separator: "\n") {
        let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
        if parts.count == 2 { values[parts[0], default: []].append(parts[1]) }
    }
    return values
}

@Suite(.timeLimit(.minutes(5))) struct InteropTests {
    /// Init segment + 0.5 s fragments from a real x264/AAC stream, concatenated into one file the way
    /// an HLS/DASH client appends them, must be read by ffprobe and decoded by ffmpeg without complaint.
    @Test(arguments: [0, 2])
    func ffmpegReadsFragmentedStream(bframes: Int) throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let stream = try FLVStream.encode(in: dir, bframes: bframes)
        let (initSegment, fragments) = try stream.fragmentedMP4()
        #expect(fragments.count == 8 || fragments.count == 9)
        var file = initSegment
        for var fragment in fragments { file.writeBuffer(&fragment) }
        let path = dir.appendingPathComponent("out.mp4").path
        try Data(bytes(file)).write(to: URL(fileURLWithPath: path))
        // Set MP4_KEEP_DIR to inspect the muxed file by hand.
        if let keep = ProcessInfo.processInfo.environment["MP4_KEEP_DIR"] {
            try? Data(bytes(file)).write(to: URL(fileURLWithPath: keep).appendingPathComponent("out-bf\(bframes).mp4"))
        }

        let streams = try runTool("ffprobe", ["-v", "error", "-show_entries",
            "stream=codec_name,profile,width,height,sample_rate,channels:format=duration", "-of", "default=nw=1", path])
        try #require(streams.status == 0, "ffprobe failed: \(streams.output)")
        print("ffprobe (bf \(bframes)): \(streams.output.split(separator: "\n").joined(separator: ", "))")
        let values = probeValues(streams.output)
        #expect(values["codec_name"] == ["h264", "aac"])
        #expect(values["width"] == ["640"] && values["height"] == ["360"])
        #expect(values["sample_rate"] == ["44100"] && values["channels"] == ["1"])   // lavfi sine is mono
        let duration = try #require(values["duration"]?.first.flatMap(Double.init), "duration: \(streams.output)")
        #expect(abs(duration - 4.0) <= 0.2, "duration \(duration)")

        let decode = try runTool("ffmpeg", ["-nostdin", "-v", "error", "-i", path, "-f", "null", "-"])
        #expect(decode.status == 0)
        #expect(decode.output.isEmpty, "ffmpeg decode reported: \(decode.output)")

        // Packets come back with our DTS, PTS = DTS + composition offset, and keyframes where FLV had them.
        let packets = try runTool("ffprobe", ["-v", "error", "-select_streams", "v:0",
            "-show_entries", "packet=pts,dts,flags", "-of", "csv=p=0", path])
        let parsed = packets.output.split(separator: "\n").map { $0.split(separator: ",").map(String.init) }
        let expected = stream.video.map { ["\(($0.dtsMs + $0.ctsMs) * 90)", "\($0.dtsMs * 90)", $0.isKeyframe ? "K" : "_"] }
        #expect(parsed.map { Array($0.prefix(2)) + [String($0[2].prefix(1))] } == expected)
        #expect(stream.video.contains { $0.ctsMs != 0 } == (bframes > 0))

        // Decoded frames in presentation order: one per sample, strictly increasing PTS.
        let frames = try runTool("ffprobe", ["-v", "error", "-select_streams", "v:0",
            "-show_entries", "frame=pts", "-of", "csv=p=0", path])
        // The first frame carries side data, which csv output appends as extra fields and a blank line.
        let pts = frames.output.split(separator: "\n").compactMap { $0.split(separator: ",").first.flatMap { Int64($0) } }
        #expect(pts.count == stream.video.count)
        #expect(zip(pts, pts.dropFirst()).allSatisfy { $0 < $1 })
        #expect(pts == stream.video.map { ($0.dtsMs + $0.ctsMs) * 90 }.sorted())
    }

    /// The same stream through Chromium's Media Source Extensions: every append must parse, and the
    /// video must play to `ended` with every frame decoded.
    @Test func chromiumMediaSourcePlaysFragments() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let stream = try FLVStream.encode(in: dir, bframes: 2)
        let (initSegment, fragments) = try stream.fragmentedMP4()
        let mime = "video/mp4; codecs=\"" + stream.tracks.map(\.codecString).joined(separator: ", ") + "\""
        #expect(mime == "video/mp4; codecs=\"avc1.64001e, mp4a.40.2\"")

        let report = try ChromiumMediaSource.play(segments: [initSegment] + fragments, mimeType: mime, in: dir)
        print("chromium: \(report.line)")
        #expect(report.status == "ended", "\(report.line)")
        #expect(report.fields["width"] == "640" && report.fields["height"] == "360")
        #expect(report.fields["decodedFrames"] == "\(stream.video.count)")
        // One continuous range: no gap between fragments or between the audio and video runs.
        let range = try #require(report.fields["buffered"]?.split(separator: "-").compactMap { Double($0) })
        #expect(range.count == 2 && range[0] < 0.1 && abs(range[1] - 4.0) <= 0.2, "buffered \(report.fields["buffered"] ?? "")")
    }

    /// Control for the harness above: fragments without an init segment must be reported as an error,
    /// so a passing run means Chromium really parsed our boxes.
    @Test func chromiumReportsFragmentsWithoutInitSegment() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var fragment = ByteBuffer()
        Fragment.write(sequenceNumber: 1, runs: [TrackRun(trackID: 1, baseMediaDecodeTime: 0,
            samples: [Sample(duration: 3000, isSync: true, data: ByteBuffer(bytes: [0, 0, 0, 1, 0x65]))])], to: &fragment)
        let report = try ChromiumMediaSource.play(segments: [fragment], mimeType: "video/mp4; codecs=\"avc1.64001e\"", in: dir)
        print("chromium control: \(report.line)")
        #expect(report.status.hasPrefix("video-error") || report.status == "sourcebuffer-error", "\(report.line)")
    }
}
