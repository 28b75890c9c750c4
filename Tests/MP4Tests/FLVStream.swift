import Codecs
import Foundation
import NIOCore
@testable import MP4
import TestSupport

/// A real ffmpeg stream read from FLV (test-only), turned into tracks and fragments the way a
/// live server would: video on track 1 at 90 kHz, audio on track 2 at its sample rate.
struct FLVStream {
    struct VideoFrame {
        var dtsMs: Int64
        var ctsMs: Int64
        var isKeyframe: Bool
        var avcc: ByteBuffer
    }

    var videoConfig: H264.AVCDecoderConfigurationRecord
    var audioConfig: AAC.AudioSpecificConfig
    var video: [VideoFrame] = []
    var audio: [ByteBuffer] = []

    /// Encodes `seconds` of testsrc2 640x360@30 + a 440 Hz sine at 44.1 kHz into FLV with ffmpeg and reads it back.
    static func encode(in dir: URL, seconds: Int = 4, bframes: Int) throws -> FLVStream {
        let flv = dir.appendingPathComponent("in.flv").path
        let encode = try runTool("ffmpeg", ["-v", "error", "-nostdin", "-y",
            "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
            "-t", "\(seconds)", "-c:v", "libx264", "-g", "30", "-bf", "\(bframes)", "-c:a", "aac", "-f", "flv", flv])
        guard encode.status == 0 else { throw FLVTestError.bad("ffmpeg encode failed: \(encode.output)") }
        return try FLVStream(tags: readFLVTags(Array(try Data(contentsOf: URL(fileURLWithPath: flv)))))
    }

    /// FLV video tag body: frame type/codec byte, AVCPacketType, signed 24-bit cts, then AVCC;
    /// audio: format byte, AACPacketType, then the raw frame (E.4.2.1 / E.4.3.1 of the FLV spec).
    init(tags: [FLVTestTag]) throws {
        var videoConfig: H264.AVCDecoderConfigurationRecord?
        var audioConfig: AAC.AudioSpecificConfig?
        var video: [VideoFrame] = []
        var audio: [ByteBuffer] = []
        for tag in tags {
            let b = tag.body
            if tag.type == 9, b.count >= 5, b[0] & 0x0F == 7 {
                let payload = ByteBuffer(bytes: b[5...])
                if b[1] == 0 {
                    videoConfig = try H264.AVCDecoderConfigurationRecord(parsing: payload)
                } else if b[1] == 1 {
                    var cts = Int64(b[2]) << 16 | Int64(b[3]) << 8 | Int64(b[4])
                    if cts & 0x80_0000 != 0 { cts -= 0x100_0000 }
                    video.append(VideoFrame(dtsMs: tag.timestamp, ctsMs: cts, isKeyframe: b[0] >> 4 == 1, avcc: payload))
                }
            } else if tag.type == 8, b.count >= 2, b[0] >> 4 == 10 {
                if b[1] == 0 {
                    audioConfig = try AAC.AudioSpecificConfig(parsing: ByteBuffer(bytes: b[2...]))
                } else {
                    audio.append(ByteBuffer(bytes: b[2...]))
                }
            }
        }
        guard let videoConfig, let audioConfig else { throw FLVTestError.bad("no AVC or AAC sequence header") }
        self.videoConfig = videoConfig
        self.audioConfig = audioConfig
        self.video = video
        self.audio = audio
    }

    var tracks: [Track] {
        [
            Track(id: 1, timescale: 90000, media: .h264(videoConfig)),
            Track(id: 2, timescale: UInt32(audioConfig.samplingFrequency), media: .aac(audioConfig)),
        ]
    }

    /// Video samples with 90 kHz durations taken from the next frame's DTS (the last repeats the previous one).
    var videoSamples: [Sample] {
        video.indices.map { i in
            let next = i + 1 < video.count ? video[i + 1].dtsMs : video[i].dtsMs + (i > 0 ? video[i].dtsMs - video[i - 1].dtsMs : 33)
            return Sample(duration: UInt32((next - video[i].dtsMs) * 90), compositionOffset: Int32(video[i].ctsMs * 90),
                          isSync: video[i].isKeyframe, data: video[i].avcc)
        }
    }

    /// Init segment followed by fragments of `fragmentMs` each, sequence numbers from 1. Audio time
    /// is a running count of 1024-sample frames, as a live packager keeps it.
    func fragmentedMP4(fragmentMs: Int64 = 500) throws -> (initSegment: ByteBuffer, fragments: [ByteBuffer]) {
        var initSegment = ByteBuffer()
        try InitSegment.write(tracks: tracks, to: &initSegment)
        let videoSamples = self.videoSamples
        let rate = Int64(audioConfig.samplingFrequency)
        var fragments: [ByteBuffer] = []
        var v = 0, a = 0
        var end = fragmentMs
        while v < video.count || a < audio.count {
            let videoStart = v, audioStart = a
            while v < video.count && video[v].dtsMs < end { v += 1 }
            while a < audio.count && Int64(a) * 1024 * 1000 / rate < end { a += 1 }
            var runs: [TrackRun] = []
            if v > videoStart {
                runs.append(TrackRun(trackID: 1, baseMediaDecodeTime: UInt64(video[videoStart].dtsMs * 90),
                                     samples: Array(videoSamples[videoStart..<v])))
            }
            if a > audioStart {
                runs.append(TrackRun(trackID: 2, baseMediaDecodeTime: UInt64(audioStart) * 1024,
                                     samples: audio[audioStart..<a].map { Sample(duration: 1024, isSync: true, data: $0) }))
            }
            if !runs.isEmpty {
                var fragment = ByteBuffer()
                Fragment.write(sequenceNumber: UInt32(fragments.count + 1), runs: runs, to: &fragment)
                fragments.append(fragment)
            }
            end += fragmentMs
        }
        return (initSegment, fragments)
    }
}
