import NIOCore

/// Audio tag header: legacy AudioTagHeader (FLV spec E.4.2.1) and Enhanced RTMP ExAudioTagHeader.
public struct AudioTagHeader: Sendable, Equatable {
    /// How the audio codec is identified.
    public enum Format: Sendable, Equatable {
        /// Legacy SoundFormat: 10 = AAC, 2 = MP3 ...
        case legacy(UInt8)
        /// Enhanced audio (SoundFormat 9 = ExHeader): 'Opus', 'fLaC', 'mp4a', 'ac-3', 'ec-3', '.mp3'.
        case fourCC(UInt32)

        /// Legacy AAC (SoundFormat 10).
        public static let aac = Format.legacy(10)

        /// Short codec name ("aac", "mp3", "opus" ...) or the FourCC text.
        public var name: String {
            switch self {
            case .legacy(let id):
                switch id {
                case 0: return "pcm"
                case 1: return "adpcm"
                case 2, 14: return "mp3"
                case 3: return "pcm_le"
                case 4, 5, 6: return "nellymoser"
                case 7: return "alaw"
                case 8: return "mulaw"
                case 10: return "aac"
                case 11: return "speex"
                case 15: return "native"
                default: return "format\(id)"
                }
            case .fourCC(let value):
                switch value {
                case AudioTagHeader.mp4a: return "aac"
                case AudioTagHeader.opus: return "opus"
                case AudioTagHeader.flac: return "flac"
                case AudioTagHeader.ac3: return "ac3"
                case AudioTagHeader.eac3: return "eac3"
                case AudioTagHeader.mp3: return "mp3"
                default: return FourCC.text(value)
                }
            }
        }
    }

    /// AACPacketType (legacy) / AudioPacketType (enhanced), folded into one vocabulary.
    public enum PacketType: Sendable, Equatable {
        /// Decoder configuration (AudioSpecificConfig, OpusHead, ...).
        case sequenceStart
        /// Coded audio frames (every non-AAC legacy tag).
        case codedFrames
        /// Anything else by raw value (enhanced 2 = SequenceEnd, 4 = MultichannelConfig, 5 = Multitrack).
        case other(UInt8)
    }

    /// Codec.
    public var format: Format
    /// Packet type; non-AAC legacy formats are always `.codedFrames`.
    public var packetType: PacketType
    /// Legacy SoundRate index 0...3 (5.5/11/22/44 kHz); 0 for enhanced headers.
    public var soundRate: UInt8
    /// Legacy SoundSize: 0 = 8-bit, 1 = 16-bit; 0 for enhanced headers.
    public var soundSize: UInt8
    /// Legacy SoundType: 0 = mono, 1 = stereo; 0 for enhanced headers.
    public var channels: UInt8
    /// Bytes before codec data (legacy AAC = 2, other legacy = 1, enhanced = 5 + extensions).
    public var headerSize: Int
    /// True for legacy SoundFormat 10 and FourCC 'mp4a'.
    public var isAAC: Bool {
        format == .aac || format == .fourCC(Self.mp4a)
    }

    static let mp4a = VideoTagHeader.fourCC("mp4a")
    static let opus = VideoTagHeader.fourCC("Opus")
    static let flac = VideoTagHeader.fourCC("fLaC")
    static let ac3 = VideoTagHeader.fourCC("ac-3")
    static let eac3 = VideoTagHeader.fourCC("ec-3")
    static let mp3 = VideoTagHeader.fourCC(".mp3")

    /// SoundFormat value that switches to the enhanced FourCC header.
    static let exHeader: UInt8 = 9
    /// AudioPacketType.Multitrack.
    static let multitrack: UInt8 = 5

    /// Creates a header value.
    public init(format: Format, packetType: PacketType, soundRate: UInt8, soundSize: UInt8, channels: UInt8, headerSize: Int) {
        self.format = format
        self.packetType = packetType
        self.soundRate = soundRate
        self.soundSize = soundSize
        self.channels = channels
        self.headerSize = headerSize
    }

    /// Parses an audio tag header without consuming `body`: legacy AudioTagHeader per Adobe FLV
    /// spec v10.1 E.4.2.1, ExAudioTagHeader per veovera Enhanced RTMP v2 ("Enhanced Audio").
    ///
    /// ffmpeg and most encoders write 0xAF for AAC regardless of the real rate and channel
    /// count, so the legacy rate/size/type bits are reported as-is and are not to be trusted;
    /// the AudioSpecificConfig is authoritative. Enhanced ModEx blocks are skipped, and
    /// Multitrack is reported as `.other(5)` with the first FourCC. An empty body (RTMP's
    /// undocumented "audio silence" message) throws `.truncated("AudioTagHeader")`.
    public init(parsing body: ByteBuffer) throws(FLVError) {
        var input = body
        let start = input.readerIndex
        guard let first = input.readInteger(as: UInt8.self) else { throw .truncated("AudioTagHeader") }
        let soundFormat = first >> 4

        if soundFormat != Self.exHeader {
            let rate = (first >> 2) & 0x03
            let size = (first >> 1) & 0x01
            let type = first & 0x01
            guard soundFormat == 10 else {
                self.init(format: .legacy(soundFormat), packetType: .codedFrames, soundRate: rate, soundSize: size, channels: type, headerSize: 1)
                return
            }
            guard let aacPacketType = input.readInteger(as: UInt8.self) else { throw .truncated("AACPacketType") }
            let packetType: PacketType
            switch aacPacketType {
            case 0: packetType = .sequenceStart
            case 1: packetType = .codedFrames
            default: packetType = .other(aacPacketType)
            }
            self.init(format: .aac, packetType: packetType, soundRate: rate, soundSize: size, channels: type, headerSize: 2)
            return
        }

        let packetTypeValue = try ExHeader.skipModEx(&input, packetType: first & 0x0F)
        if packetTypeValue == Self.multitrack {
            guard let trackByte = input.readInteger(as: UInt8.self) else { throw .truncated("audioMultitrackType") }
            guard trackByte & 0x0F != Self.multitrack else { throw .invalid("nested audio Multitrack") }
        }
        let fourCC = try ExHeader.readFourCC(&input)
        let packetType: PacketType
        switch packetTypeValue {
        case 0: packetType = .sequenceStart
        case 1: packetType = .codedFrames
        default: packetType = .other(packetTypeValue)
        }
        self.init(format: .fourCC(fourCC), packetType: packetType, soundRate: 0, soundSize: 0, channels: 0, headerSize: input.readerIndex - start)
    }
}
