import NIOCore

/// Video tag header: legacy (FLV spec E.4.3.1) and Enhanced RTMP (ExVideoTagHeader, isExHeader bit 0x80; frame type in bits 4..6; packet type in the low 4 bits; FourCC follows). Never misparse an enhanced header as AVC.
public struct VideoTagHeader: Sendable, Equatable {
    /// VideoFrameType (FLV spec E.4.3.1; Enhanced RTMP keeps the numbering in 3 bits).
    public enum FrameType: UInt8, Sendable {
        /// Seekable frame.
        case key = 1
        /// Non-seekable frame.
        case inter = 2
        /// H.263 disposable frame.
        case disposableInter = 3
        /// Generated keyframe (server use).
        case generatedKey = 4
        /// Video info / command frame: no media payload.
        case command = 5
    }

    /// How the codec is identified.
    public enum Codec: Sendable, Equatable {
        /// Legacy 4-bit CodecID: 7 = AVC, 12 = HEVC (non-standard, Chinese CDN extension).
        case legacy(UInt8)
        /// Enhanced RTMP FourCC, e.g. 'avc1', 'hvc1', 'av01', 'vp09'.
        case fourCC(UInt32)

        /// Legacy AVC (CodecID 7).
        public static let avc = Codec.legacy(7)

        /// Short codec name ("h264", "hevc", "av1", "vp9", "flv1", "vp6" ...) or the FourCC text.
        public var name: String {
            switch self {
            case .legacy(let id):
                switch id {
                case 2: return "flv1"
                case 3: return "flashsv"
                case 4: return "vp6"
                case 5: return "vp6a"
                case 6: return "flashsv2"
                case 7: return "h264"
                case 12: return "hevc"
                default: return "codec\(id)"
                }
            case .fourCC(let value):
                switch value {
                case VideoTagHeader.avc1: return "h264"
                case VideoTagHeader.hvc1: return "hevc"
                case VideoTagHeader.av01: return "av1"
                case VideoTagHeader.vp09: return "vp9"
                case VideoTagHeader.vp08: return "vp8"
                case VideoTagHeader.vvc1: return "vvc"
                default: return FourCC.text(value)
                }
            }
        }
    }

    /// AVCPacketType (legacy) / VideoPacketType (enhanced), folded into one vocabulary.
    public enum PacketType: Sendable, Equatable {
        /// Decoder configuration (avcC / hvcC / av1C / vpcC).
        case sequenceStart
        /// Coded frames (legacy NALU, enhanced CodedFrames and CodedFramesX).
        case codedFrames
        /// End of sequence.
        case sequenceEnd
        /// Enhanced AMF metadata (e.g. HDR colour info).
        case metadata
        /// Anything else, by raw value; 0xFF marks a command frame, 6 a multitrack body.
        case other(UInt8)
    }

    /// Frame type.
    public var frameType: FrameType
    /// Codec id or FourCC.
    public var codec: Codec
    /// Packet type; enhanced CodedFramesX is reported as `.codedFrames` with composition time 0.
    public var packetType: PacketType
    /// Signed 24-bit composition time offset (ms) for AVC/HEVC coded frames, else 0.
    public var compositionTime: Int32
    /// Bytes before codec data (AVC legacy = 5, enhanced = 5 (+3 when composition time present)).
    public var headerSize: Int
    /// True for legacy CodecID 7 and FourCC 'avc1'.
    public var isH264: Bool {
        codec == .avc || codec == .fourCC(Self.avc1)
    }

    static let avc1 = fourCC("avc1")
    static let hvc1 = fourCC("hvc1")
    static let vvc1 = fourCC("vvc1")
    static let av01 = fourCC("av01")
    static let vp09 = fourCC("vp09")
    static let vp08 = fourCC("vp08")

    /// Sentinel packet type for command frames, which carry a command byte instead of media.
    static let commandPacketType = PacketType.other(0xFF)
    /// VideoPacketType.Multitrack: the body is not unpacked; codec is the first track's FourCC.
    static let multitrack: UInt8 = 6

    /// Creates a header value.
    public init(frameType: FrameType, codec: Codec, packetType: PacketType, compositionTime: Int32, headerSize: Int) {
        self.frameType = frameType
        self.codec = codec
        self.packetType = packetType
        self.compositionTime = compositionTime
        self.headerSize = headerSize
    }

    /// Parses a video tag header without consuming `body`: legacy VideoTagHeader per Adobe FLV
    /// spec v10.1 E.4.3.1, ExVideoTagHeader per veovera Enhanced RTMP v1 and v2 ("Enhanced Video").
    ///
    /// - Legacy CodecID 7 (AVC) and 12 (HEVC, same layout by convention) read AVCPacketType and
    ///   the SI24 CompositionTime; other legacy codecs are `.codedFrames` with a 1-byte header.
    /// - Enhanced: ModEx blocks are skipped; Multitrack is reported as `.other(6)` with the first
    ///   FourCC; CodedFrames of avc1/hvc1/vvc1 carry SI24 composition time, CodedFramesX does not.
    /// - Command frames (frame type 5, and for enhanced headers packet type other than Metadata)
    ///   report `.other(0xFF)` with `headerSize` pointing at the command byte; an enhanced one has
    ///   no FourCC, so its codec is `.fourCC(0)`.
    /// - Enhanced Metadata ignores the frame type (spec), so a reserved value there reads as `.command`.
    public init(parsing body: ByteBuffer) throws(FLVError) {
        var input = body
        let start = input.readerIndex
        guard let first = input.readInteger(as: UInt8.self) else { throw .truncated("VideoTagHeader") }

        if first & 0x80 == 0 {
            guard let frameType = FrameType(rawValue: first >> 4) else { throw .invalid("video frame type \(first >> 4)") }
            let codecID = first & 0x0F
            if frameType == .command {
                self.init(frameType: frameType, codec: .legacy(codecID), packetType: Self.commandPacketType, compositionTime: 0, headerSize: 1)
                return
            }
            guard codecID == 7 || codecID == 12 else {
                self.init(frameType: frameType, codec: .legacy(codecID), packetType: .codedFrames, compositionTime: 0, headerSize: 1)
                return
            }
            guard let avcPacketType = input.readInteger(as: UInt8.self) else { throw .truncated("AVCPacketType") }
            guard let rawTime = input.readFLVUInt24() else { throw .truncated("CompositionTime") }
            let packetType: PacketType
            switch avcPacketType {
            case 0: packetType = .sequenceStart
            case 1: packetType = .codedFrames
            case 2: packetType = .sequenceEnd
            default: packetType = .other(avcPacketType)
            }
            // E.4.3.1: CompositionTime is only meaningful for NALU packets; it is 0 otherwise.
            let time = packetType == .codedFrames ? Self.signExtend24(rawTime) : 0
            self.init(frameType: frameType, codec: .legacy(codecID), packetType: packetType, compositionTime: time, headerSize: 5)
            return
        }

        let rawFrameType = (first >> 4) & 0x07
        let packetTypeValue = try ExHeader.skipModEx(&input, packetType: first & 0x0F)
        let frameType: FrameType
        if let known = FrameType(rawValue: rawFrameType) {
            frameType = known
        } else if packetTypeValue == 4 {
            frameType = .command
        } else {
            throw .invalid("video frame type \(rawFrameType)")
        }

        if frameType == .command && packetTypeValue != 4 {
            self.init(frameType: .command, codec: .fourCC(0), packetType: Self.commandPacketType, compositionTime: 0, headerSize: input.readerIndex - start)
            return
        }

        if packetTypeValue == Self.multitrack {
            guard let trackByte = input.readInteger(as: UInt8.self) else { throw .truncated("videoMultitrackType") }
            guard trackByte & 0x0F != Self.multitrack else { throw .invalid("nested video Multitrack") }
            let fourCC = try ExHeader.readFourCC(&input)
            self.init(frameType: frameType, codec: .fourCC(fourCC), packetType: .other(Self.multitrack), compositionTime: 0, headerSize: input.readerIndex - start)
            return
        }

        let fourCC = try ExHeader.readFourCC(&input)
        var time: Int32 = 0
        let packetType: PacketType
        switch packetTypeValue {
        case 0: packetType = .sequenceStart
        case 1:
            packetType = .codedFrames
            if fourCC == Self.avc1 || fourCC == Self.hvc1 || fourCC == Self.vvc1 {
                guard let rawTime = input.readFLVUInt24() else { throw .truncated("CompositionTime") }
                time = Self.signExtend24(rawTime)
            }
        case 2: packetType = .sequenceEnd
        case 3: packetType = .codedFrames   // CodedFramesX: composition time implied 0
        case 4: packetType = .metadata
        default: packetType = .other(packetTypeValue)
        }
        self.init(frameType: frameType, codec: .fourCC(fourCC), packetType: packetType, compositionTime: time, headerSize: input.readerIndex - start)
    }

    /// Packs a four-character code the way it appears on the wire (big-endian).
    public static func fourCC(_ s: StaticString) -> UInt32 {
        FourCC.value(s)
    }

    /// SI24 big-endian to Int32: negative composition offsets are legal (B-frame reordering
    /// with a shifted DTS), and reading them unsigned would put frames ~4.6 hours late.
    static func signExtend24(_ raw: UInt32) -> Int32 {
        Int32(bitPattern: raw << 8) >> 8
    }
}
