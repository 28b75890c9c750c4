import CAudio

/// libopus at 48 kHz, two channels, tuned for general audio (music and speech).
public final class OpusEncoder {
    /// 20 ms: what WebRTC peers send and expect (RFC 7587 section 4.2 leaves it to the sender; browsers use 20).
    public static let frameSamples = 960

    let encoder: OpaquePointer
    var packet = [UInt8](repeating: 0, count: 4000)

    public init(bitrate: Int) throws(AudioError) {
        var err = [CChar](repeating: 0, count: 256)
        guard let e = ls_opus_encoder_new(Int32(clamping: bitrate), &err, err.count) else { throw .encoderFailed(reason(err)) }
        encoder = e
    }

    deinit { ls_opus_encoder_free(encoder) }

    /// One packet from ``frameSamples`` frames of interleaved stereo.
    public func encode(_ pcm: ArraySlice<Float>) throws(AudioError) -> [UInt8] {
        precondition(pcm.count == 2 * Self.frameSamples, "Opus frames are 20 ms")
        var err = [CChar](repeating: 0, count: 256)
        let capacity = Int32(packet.count)
        let n = pcm.withUnsafeBufferPointer { p in
            packet.withUnsafeMutableBufferPointer { ls_opus_encode(encoder, p.baseAddress, Int32(Self.frameSamples), $0.baseAddress, capacity, &err, err.count) }
        }
        guard n >= 0 else { throw .encoderFailed(reason(err)) }
        return Array(packet[0..<Int(n)])
    }

    /// How many samples the encoder's output lags its input (its look-ahead, 312 at 48 kHz for libopus 1.3).
    public var lookahead: Int { Int(ls_opus_encoder_lookahead(encoder)) }
    public var bitrate: Int { Int(ls_opus_encoder_bitrate(encoder)) }
}

/// libopus's decoder, 48 kHz stereo: how tests and the benchmark hear what the bridge sends.
public final class OpusDecoder {
    let decoder: OpaquePointer
    var output = [Float](repeating: 0, count: 2 * 5760)

    public init() throws(AudioError) {
        var err = [CChar](repeating: 0, count: 256)
        guard let d = ls_opus_decoder_new(&err, err.count) else { throw .decodeFailed(reason(err)) }
        decoder = d
    }

    deinit { ls_opus_decoder_free(decoder) }

    /// One packet decoded to interleaved stereo; nil conceals a lost one.
    public func decode(_ packet: [UInt8]?) throws(AudioError) -> ArraySlice<Float> {
        var err = [CChar](repeating: 0, count: 256)
        let capacity = Int32(output.count / 2)
        let n: Int32
        if let packet {
            n = packet.withUnsafeBufferPointer { p in
                output.withUnsafeMutableBufferPointer { ls_opus_decode(decoder, p.baseAddress, p.count, $0.baseAddress, capacity, &err, err.count) }
            }
        } else {
            n = output.withUnsafeMutableBufferPointer { ls_opus_decode(decoder, nil, 0, $0.baseAddress, Int32(OpusEncoder.frameSamples), &err, err.count) }
        }
        guard n >= 0 else { throw .decodeFailed(reason(err)) }
        return output[0..<(2 * Int(n))]
    }
}
