import Codecs
import Digest
import MP4
import NIOCore

/// The CMAF side of the cut: the tracks of the current initialization section, and each part's samples made
/// into one `moof` + `mdat` fragment (video on track 1 at 90 kHz, audio at its sample rate).
struct FragmentBuilder: Sendable {
    let video: Track?
    let audio: Track?
    let initSection: ByteBuffer
    /// RFC 6381 codecs, comma-separated (the player's MSE type).
    let codecs: String
    var sequenceNumber: UInt32 = 1
    /// Decode time of the next audio frame, in the audio timescale. AAC frames are counted, not derived from the
    /// millisecond timestamps, so that audio fragments join without gaps; it is re-anchored if the two drift
    /// apart by more than 100 ms (a gap in the publisher's audio).
    var audioClock: Int64?
    let audioFrameSamples: Int64

    init(video: H264.AVCDecoderConfigurationRecord?, audio: AAC.AudioSpecificConfig?) throws {
        var tracks: [Track] = []
        if let video { tracks.append(Track(id: 1, timescale: 90000, media: .h264(video))) }
        if let audio {
            tracks.append(Track(id: UInt32(tracks.count + 1), timescale: UInt32(max(1, audio.samplingFrequency)),
                                media: .aac(audio)))
        }
        var buffer = ByteBuffer()
        try InitSegment.write(tracks: tracks, to: &buffer)
        self.video = video == nil ? nil : tracks.first
        self.audio = audio == nil ? nil : tracks.last
        self.initSection = buffer
        self.codecs = tracks.map(\.codecString).joined(separator: ",")
        self.audioFrameSamples = audio?.frameLengthFlag == true ? 960 : 1024
    }

    /// The fragment of one part, its SHA-256, and how many frames it had to leave out.
    mutating func fragment(_ samples: [Segmenter.PendingSample], endDTS: Int64)
        -> (data: ByteBuffer, sha256: [UInt8], dropped: Int)
    {
        var runs: [TrackRun] = []
        var dropped = 0
        let videoSamples = samples.filter(\.isVideo)
        if let video, let first = videoSamples.first {
            var out: [Sample] = []
            out.reserveCapacity(videoSamples.count)
            var previous: Int64 = 3000
            for (i, s) in videoSamples.enumerated() {
                let next = i + 1 < videoSamples.count ? videoSamples[i + 1].dts : endDTS
                var duration = (next - s.dts) * 90
                if duration <= 0 { duration = previous }
                previous = duration
                out.append(Sample(duration: UInt32(clamping: duration), compositionOffset: Int32(clamping: Int64(s.compositionTime) * 90),
                                  isSync: s.isKeyframe, data: s.data))
            }
            runs.append(TrackRun(trackID: video.id, baseMediaDecodeTime: UInt64(max(0, first.dts) * 90), samples: out))
        } else {
            dropped += videoSamples.count
        }
        let audioSamples = samples.filter { !$0.isVideo }
        if let audio, let first = audioSamples.first {
            let rate = Int64(audio.timescale)
            let expected = max(0, first.dts) * rate / 1000
            if audioClock == nil || abs(audioClock! - expected) > rate / 10 { audioClock = expected }
            let base = audioClock!
            audioClock! += Int64(audioSamples.count) * audioFrameSamples
            runs.append(TrackRun(trackID: audio.id, baseMediaDecodeTime: UInt64(base), samples: audioSamples.map {
                Sample(duration: UInt32(audioFrameSamples), compositionOffset: 0, isSync: true, data: $0.data)
            }))
        } else {
            dropped += audioSamples.count
        }
        var data = ByteBuffer()
        Fragment.write(sequenceNumber: sequenceNumber, runs: runs, to: &data)
        sequenceNumber &+= 1
        return (data, data.withUnsafeReadableBytes { Digest.sha256($0) }, dropped)
    }
}
