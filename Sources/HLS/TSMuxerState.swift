import Codecs
import MPEGTS
import NIOCore

/// The MPEG-TS side of the cut: a ``TSMuxer`` for the current codec configuration.
struct TSMuxerState: Sendable {
    var muxer: TSMuxer
    /// Set when the audio cannot go into ADTS (and so not into TS): the TS segments then carry video only.
    let leftOut: String?
    let carriesAudio: Bool

    init?(video: H264.AVCDecoderConfigurationRecord?, audio: AAC.AudioSpecificConfig?) {
        var audio = audio
        var leftOut: String?
        if let a = audio, (try? ADTSWriter(config: a)) == nil {
            leftOut = "audio \(a.codecString) (not expressible in ADTS)"
            audio = nil
        }
        guard let muxer = try? TSMuxer(videoConfig: video, audioConfig: audio) else { return nil }
        self.muxer = muxer
        self.leftOut = leftOut
        self.carriesAudio = audio != nil
    }

    mutating func writeTables(to buffer: inout ByteBuffer) {
        muxer.writeTables(to: &buffer)
    }

    /// False if the frame could not be muxed (a malformed access unit, an oversized AAC frame).
    mutating func write(_ sample: Segmenter.PendingSample, to buffer: inout ByteBuffer) -> Bool {
        if !sample.isVideo && !carriesAudio { return true }
        let ts = TSSample(kind: sample.isVideo ? .video : .audio, dts: sample.dts * 90,
                          pts: (sample.dts + Int64(sample.compositionTime)) * 90,
                          isKeyframe: sample.isKeyframe, data: sample.data)
        do {
            try muxer.write(ts, to: &buffer)
            return true
        } catch {
            return false
        }
    }
}
