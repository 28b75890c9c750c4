import Codecs
import Foundation
import NIOCore
import Testing
import TestSupport
@testable import MPEGTS

/// Runs a real tool; a missing one fails the test with a clear message (see TestSupport.runTool).
@discardableResult
func run(_ tool: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    try runTool(tool, arguments)
}

@Suite(.timeLimit(.minutes(5))) struct InteropTests {
    @Test(arguments: [["-bf", "0"], ["-bf", "2"]])
    func ffmpegAcceptsMuxedFLV(bframes: [String]) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("helper-ts-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let flv = dir.appendingPathComponent("out.flv").path
        let tsPath = dir.appendingPathComponent("out.ts").path

        let encode = try run("ffmpeg", ["-v", "error", "-nostdin", "-y",
            "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", "3", "-c:v", "libx264", "-g", "25"] + bframes + ["-c:a", "aac", "-f", "flv", flv])
        try #require(encode.status == 0, "ffmpeg encode failed: \(encode.output)")

        let tags = try readFLVTags(Array(try Data(contentsOf: URL(fileURLWithPath: flv))))
        var videoConfig: H264.AVCDecoderConfigurationRecord?
        var audioConfig: AAC.AudioSpecificConfig?
        var samples: [TSSample] = []
        var sawBFrameTimestamps = false
        for tag in tags {
            let b = tag.body
            if tag.type == 9, b.count >= 5, b[0] & 0x0F == 7 {
                let payload = ByteBuffer(bytes: b[5...])
                if b[1] == 0 {
                    videoConfig = try H264.AVCDecoderConfigurationRecord(parsing: payload)
                } else if b[1] == 1 {
                    var cts = Int64(b[2]) << 16 | Int64(b[3]) << 8 | Int64(b[4])
                    if cts & 0x80_0000 != 0 { cts -= 0x100_0000 }
                    if cts != 0 { sawBFrameTimestamps = true }
                    samples.append(TSSample(kind: .video, dts: tag.timestamp * 90, pts: (tag.timestamp + cts) * 90,
                                            isKeyframe: b[0] >> 4 == 1, data: payload))
                }
            } else if tag.type == 8, b.count >= 2, b[0] >> 4 == 10 {
                let payload = ByteBuffer(bytes: b[2...])
                if b[1] == 0 {
                    audioConfig = try AAC.AudioSpecificConfig(parsing: payload)
                } else {
                    samples.append(TSSample(kind: .audio, dts: tag.timestamp * 90, pts: tag.timestamp * 90,
                                            isKeyframe: true, data: payload))
                }
            }
        }
        #expect(sawBFrameTimestamps == (bframes.last != "0"))

        let video = try #require(videoConfig, "no AVC sequence header in the FLV")
        let audio = try #require(audioConfig, "no AAC sequence header in the FLV")
        var mux = try TSMuxer(videoConfig: video, audioConfig: audio)
        var out = ByteBuffer()
        for sample in samples {
            // Tables before every keyframe, as an HLS segmenter would at segment starts.
            if sample.kind == .video && sample.isKeyframe || out.readableBytes == 0 { mux.writeTables(to: &out) }
            try mux.write(sample, to: &out)
        }
        let tsBytes = Array(out.readableBytesView)
        try Data(tsBytes).write(to: URL(fileURLWithPath: tsPath))
        // Set MPEGTS_KEEP_DIR to inspect the muxed files by hand.
        if let keep = ProcessInfo.processInfo.environment["MPEGTS_KEEP_DIR"] {
            try? Data(tsBytes).write(to: URL(fileURLWithPath: keep).appendingPathComponent("out\(bframes.joined()).ts"))
        }

        // Our own parser: framing, continuity, tables, timestamps round-trip.
        let parsed = try TSTestParser(tsBytes)
        #expect(parsed.streamTypes == [0x100: 0x1B, 0x101: 0x0F])
        let videoPES = parsed.pes.filter { $0.pid == 0x100 }
        let videoSamples = samples.filter { $0.kind == .video }.sorted { $0.dts < $1.dts }
        #expect(videoPES.count == videoSamples.count)
        for (pes, sample) in zip(videoPES, videoSamples) {
            #expect(pes.pts == sample.pts && (pes.dts ?? pes.pts) == sample.dts && pes.randomAccess == sample.isKeyframe)
            #expect(Array(pes.payload.prefix(6)) == [0, 0, 0, 1, 0x09, 0xF0])
        }

        let streams = try run("ffprobe", ["-v", "error", "-show_streams", tsPath])
        try #require(streams.status == 0, "ffprobe failed: \(streams.output)")
        #expect(streams.output.contains("codec_name=h264"))
        #expect(streams.output.contains("width=320") && streams.output.contains("height=240"))
        #expect(streams.output.contains("codec_name=aac"))
        #expect(streams.output.contains("sample_rate=48000"))

        let decode = try run("ffmpeg", ["-nostdin", "-v", "error", "-i", tsPath, "-f", "null", "-"])
        #expect(decode.status == 0)
        #expect(decode.output.isEmpty, "ffmpeg decode reported: \(decode.output)")

        let format = try run("ffprobe", ["-v", "error", "-show_entries", "format=duration", "-of", "default=nw=1:nk=1", tsPath])
        let duration = try #require(Double(format.output.trimmingCharacters(in: .whitespacesAndNewlines)), "duration: \(format.output)")
        #expect(abs(duration - 3.0) <= 0.3, "duration \(duration)")
    }
}
