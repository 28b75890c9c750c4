import CAudio

/// libavcodec's AAC decoder (LC, HE-AAC v1 and v2) followed by libswresample: raw AAC access units in, 48 kHz
/// interleaved stereo float out, whatever the stream's rate and channel count (mono is copied to both channels,
/// more than two are mixed down). A rate or layout that changes mid-stream is followed.
public final class AACDecoder {
    /// Stereo frames (a sample per channel) per second of output.
    public static let outputRate = Int(LS_AUDIO_RATE)

    let decoder: OpaquePointer
    var output: [Float]

    /// A decoder for the stream `config` (an AudioSpecificConfig, ISO/IEC 14496-3 1.6.2.1) describes.
    public init(config: [UInt8]) throws(AudioError) {
        var err = [CChar](repeating: 0, count: 256)
        guard let d = config.withUnsafeBufferPointer({ ls_aac_decoder_new($0.baseAddress, $0.count, &err, err.count) }) else {
            throw .badConfiguration(reason(err))
        }
        decoder = d
        // An HE-AAC access unit is 2048 samples; at 8 kHz that is 12,288 at 48 kHz. Room for four times that.
        output = [Float](repeating: 0, count: 2 * 49_152)
    }

    deinit { ls_aac_decoder_free(decoder) }

    /// Decodes one access unit to interleaved stereo at 48 kHz. Some calls return nothing (the resampler holds a
    /// few samples back); a bad access unit throws and the next good one decodes.
    public func decode(_ accessUnit: some Collection<UInt8>) throws(AudioError) -> ArraySlice<Float> {
        var err = [CChar](repeating: 0, count: 256)
        let capacity = Int32(output.count / 2)
        let n = accessUnit.withContiguousStorageIfAvailable { au in
            output.withUnsafeMutableBufferPointer { ls_aac_decode(decoder, au.baseAddress, au.count, $0.baseAddress, capacity, &err, err.count) }
        } ?? Array(accessUnit).withUnsafeBufferPointer { au in
            output.withUnsafeMutableBufferPointer { ls_aac_decode(decoder, au.baseAddress, au.count, $0.baseAddress, capacity, &err, err.count) }
        }
        guard n >= 0 else { throw .decodeFailed(reason(err)) }
        return output[0..<(2 * Int(n))]
    }

    /// The last decoded access unit's sample rate and channel count (0 before the first).
    public var inputRate: Int { Int(ls_aac_decoder_input_rate(decoder)) }
    public var inputChannels: Int { Int(ls_aac_decoder_input_channels(decoder)) }
    /// Samples per channel in the last decoded access unit (1024 for LC, 2048 for HE-AAC).
    public var inputSamples: Int { Int(ls_aac_decoder_input_samples(decoder)) }
}
