import Codecs
import NIOCore

/// The one sample entry of a track's `stsd` (ISO/IEC 14496-12 8.5.2), resolved and validated from a
/// `Track` before anything is written, so that a bad track leaves the output untouched.
struct SampleEntry: Sendable {
    enum Kind: Sendable {
        /// `avc1` with an `avcC` box, ISO/IEC 14496-15 5.4.2.1.
        case avc1(H264.AVCDecoderConfigurationRecord, width: UInt16, height: UInt16)
        /// `mp4a` with an `esds` box, ISO/IEC 14496-14 5.6.1.
        case mp4a(AAC.AudioSpecificConfig, channelCount: UInt16, sampleRate: Int)
    }

    var kind: Kind

    init(_ track: Track) throws(MP4Error) {
        switch track.media {
        case .h264(let config):
            guard let sps = config.sequenceParameterSets.first, !config.pictureParameterSets.isEmpty else {
                throw .missingParameterSets(trackID: track.id)
            }
            guard [1, 2, 4].contains(config.nalLengthSize) else {
                throw .invalidNALLengthSize(trackID: track.id, config.nalLengthSize)
            }
            let parsed: H264.SequenceParameterSet
            do {
                parsed = try H264.SequenceParameterSet(parsing: sps)   // the record keeps the NAL header byte
            } catch {
                throw .invalidSequenceParameterSet(trackID: track.id, error)
            }
            // The SPS allows sizes up to 0xFFFF macroblocks; the sample entry holds 16 bits.
            kind = .avc1(config, width: UInt16(clamping: parsed.width), height: UInt16(clamping: parsed.height))

        case .aac(let config):
            guard (1...0xFF_FFFF).contains(config.samplingFrequency) else {
                throw .invalidSamplingFrequency(trackID: track.id, config.samplingFrequency)
            }
            // Decoders take the layout from the AudioSpecificConfig; channelcount only has to be
            // plausible. 0 means "defined by a program_config_element", where 2 is the usual answer;
            // 7 is 7.1 (Table 1.19); PS (29) decodes a mono core to stereo.
            let channels: UInt16
            switch config.channelConfiguration {
            case 1 where config.extensionObjectType == 29: channels = 2
            case 1...6: channels = UInt16(config.channelConfiguration)
            case 7: channels = 8
            default: channels = 2
            }
            kind = .mp4a(config, channelCount: channels,
                         sampleRate: config.extensionSamplingFrequency ?? config.samplingFrequency)
        }
    }

    /// `hdlr` handler_type, ISO/IEC 14496-12 8.4.3.
    var handlerType: String {
        switch kind {
        case .avc1: return "vide"
        case .mp4a: return "soun"
        }
    }

    var isVideo: Bool {
        if case .avc1 = kind { return true }
        return false
    }

    /// Display size for `tkhd`; (0, 0) for audio.
    var dimensions: (width: UInt16, height: UInt16) {
        switch kind {
        case .avc1(_, let width, let height): return (width, height)
        case .mp4a: return (0, 0)
        }
    }

    func write(to buffer: inout ByteBuffer) {
        switch kind {
        case .avc1(let config, let width, let height):
            buffer.writeBox("avc1") { entry in
                Self.writeSampleEntryHeader(to: &entry)
                // VisualSampleEntry, ISO/IEC 14496-12 12.1.3.
                entry.writeInteger(UInt16(0))             // pre_defined
                entry.writeInteger(UInt16(0))             // reserved
                entry.writeRepeatingByte(0, count: 12)    // pre_defined[3]
                entry.writeInteger(width)
                entry.writeInteger(height)
                entry.writeInteger(UInt32(0x0048_0000))   // horizresolution: 72 dpi, the fixed value
                entry.writeInteger(UInt32(0x0048_0000))   // vertresolution
                entry.writeInteger(UInt32(0))             // reserved
                entry.writeInteger(UInt16(1))             // frame_count: one frame per sample
                entry.writeRepeatingByte(0, count: 32)    // compressorname: empty Pascal string
                entry.writeInteger(UInt16(0x0018))        // depth: colour, no alpha
                entry.writeInteger(Int16(-1))             // pre_defined
                entry.writeBox("avcC") { config.write(to: &$0) }
            }

        case .mp4a(let config, let channelCount, let sampleRate):
            buffer.writeBox("mp4a") { entry in
                Self.writeSampleEntryHeader(to: &entry)
                // AudioSampleEntry, ISO/IEC 14496-12 12.2.3.
                entry.writeRepeatingByte(0, count: 8)     // reserved[2]
                entry.writeInteger(channelCount)
                entry.writeInteger(UInt16(16))            // samplesize
                entry.writeInteger(UInt16(0))             // pre_defined
                entry.writeInteger(UInt16(0))             // reserved
                // 16.16 fixed point cannot hold rates above 65535; like libavformat, write 0 then
                // (and for a nonsensical SBR rate), since decoders take the rate from the
                // AudioSpecificConfig anyway.
                let rate = (1...0xFFFF).contains(sampleRate) ? UInt32(sampleRate) << 16 : 0
                entry.writeInteger(rate)
                ElementaryStreamDescriptor(config: config).write(to: &entry)
            }
        }
    }

    /// SampleEntry, ISO/IEC 14496-12 8.5.2.2: six reserved bytes and data_reference_index 1,
    /// the single self-contained `url ` entry of `dref`.
    private static func writeSampleEntryHeader(to buffer: inout ByteBuffer) {
        buffer.writeRepeatingByte(0, count: 6)
        buffer.writeInteger(UInt16(1))
    }
}
