import Codecs
import NIOCore

/// Converts AAC raw frames to ADTS (7-byte header, no CRC), ISO/IEC 14496-3 1.A.2 (adts_fixed_header
/// and adts_variable_header), the framing MPEG-TS stream type 0x0F requires.
///
/// HE-AAC configs are written with their core object type and core sampling rate: ADTS has no
/// field for SBR/PS, so decoders find the extension implicitly in the payload.
public struct ADTSWriter: Sendable {
    /// Largest `aac_frame_length` (header included) the 13-bit field can express.
    public static let maxFrameLength = 8191
    static let headerLength = 7

    let profile: UInt8
    let samplingFrequencyIndex: UInt8
    let channelConfiguration: UInt8

    /// Validates that `config` is expressible in an ADTS header.
    public init(config: AAC.AudioSpecificConfig) throws(TSError) {
        // profile_ObjectType is 2 bits holding objectType - 1, so only Main, LC, SSR and LTP fit.
        guard (1...4).contains(config.objectType) else {
            throw .invalidConfiguration("ADTS cannot carry AAC object type \(config.objectType)")
        }
        // Index 15 means an explicit 24-bit rate in the ASC, which ADTS has no room for.
        guard config.samplingFrequencyIndex < 13 else {
            throw .invalidConfiguration("ADTS cannot carry samplingFrequencyIndex \(config.samplingFrequencyIndex)")
        }
        // 0 would need a program_config_element inside each raw frame, which FLV/MP4 frames never carry.
        guard (1...7).contains(config.channelConfiguration) else {
            throw .invalidConfiguration("ADTS cannot carry channelConfiguration \(config.channelConfiguration)")
        }
        // ADTS has no frameLengthFlag; 960-sample frames would be decoded as 1024.
        guard !config.frameLengthFlag else {
            throw .invalidConfiguration("ADTS cannot signal 960-sample frames")
        }
        self.profile = config.objectType - 1
        self.samplingFrequencyIndex = config.samplingFrequencyIndex
        self.channelConfiguration = config.channelConfiguration
    }

    /// Appends the ADTS header and the raw frame to `to`; nothing is written when the frame is rejected.
    public func write(frame: ByteBuffer, to out: inout ByteBuffer) throws(TSError) {
        guard frame.readableBytes > 0 else { throw .invalidFrame("empty AAC frame") }
        guard frame.readableBytes <= Self.maxFrameLength - Self.headerLength else {
            throw .invalidFrame("AAC frame of \(frame.readableBytes) bytes exceeds the ADTS limit")
        }
        let length = frame.readableBytes + Self.headerLength
        let header: [UInt8] = [
            0xFF,
            0xF1,  // syncword low nibble, ID 0 (MPEG-4), layer 00, protection_absent 1
            (profile << 6) | (samplingFrequencyIndex << 2) | (channelConfiguration >> 2),
            ((channelConfiguration & 0x3) << 6) | UInt8(truncatingIfNeeded: length >> 11),
            UInt8(truncatingIfNeeded: length >> 3),
            // 0x7FF buffer fullness signals VBR, which is what AAC encoders feeding live streams produce.
            (UInt8(truncatingIfNeeded: length & 0x7) << 5) | 0x1F,
            0xFC,  // buffer fullness low bits, number_of_raw_data_blocks_in_frame 0 (one block)
        ]
        out.writeBytes(header)
        out.writeImmutableBuffer(frame)
    }
}
