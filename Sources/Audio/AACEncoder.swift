import CAudio

/// libavcodec's AAC-LC encoder, 48 kHz stereo: raw access units and the AudioSpecificConfig that describes them
/// (an FLV AAC sequence header).
public final class AACEncoder {
    let encoder: OpaquePointer
    var output = [UInt8](repeating: 0, count: 8192)
    /// Frames (one sample per channel) per access unit: 1024.
    public let frameSize: Int
    /// The encoder's priming delay in samples (1024): its first access unit starts that far before the first
    /// sample fed.
    public let delay: Int
    public let config: [UInt8]
    public let bitrate: Int

    public init(bitrate: Int) throws(AudioError) {
        var err = [CChar](repeating: 0, count: 256)
        guard let e = ls_aac_encoder_new(Int32(clamping: bitrate), &err, err.count) else { throw .encoderFailed(reason(err)) }
        encoder = e
        frameSize = Int(ls_aac_encoder_frame_size(e))
        delay = Int(ls_aac_encoder_delay(e))
        self.bitrate = Int(ls_aac_encoder_bitrate(e))
        var asc = [UInt8](repeating: 0, count: 64)
        let n = ls_aac_encoder_config(e, &asc, Int32(asc.count))
        guard n > 0 else {
            ls_aac_encoder_free(e)
            throw .encoderFailed("the AAC encoder gave no AudioSpecificConfig")
        }
        config = Array(asc[0..<Int(n)])
    }

    deinit { ls_aac_encoder_free(encoder) }

    /// One access unit's worth (``frameSize`` frames of interleaved stereo) in; the access unit that completes,
    /// if any, with the position of its first sample among those fed (negative for the priming).
    public func encode(_ pcm: ArraySlice<Float>) throws(AudioError) -> (payload: [UInt8], position: Int64)? {
        precondition(pcm.count == 2 * frameSize, "AAC frames are \(frameSize) samples")
        var err = [CChar](repeating: 0, count: 256)
        var pts: Int64 = 0
        let capacity = Int32(output.count)
        let n = pcm.withUnsafeBufferPointer { p in
            output.withUnsafeMutableBufferPointer {
                ls_aac_encode(encoder, p.baseAddress, Int32(frameSize), $0.baseAddress, capacity, &pts, &err, err.count)
            }
        }
        guard n >= 0 else { throw .encoderFailed(reason(err)) }
        return n == 0 ? nil : (Array(output[0..<Int(n)]), pts)
    }
}
