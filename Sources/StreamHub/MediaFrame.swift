import FLV
import NIOCore

/// One unit of a live stream as the hub holds it: the body of an FLV tag (which is also the payload of
/// the RTMP message it arrived in), so RTMP and HTTP-FLV viewers get the publisher's bytes untouched.
public struct MediaFrame: Sendable {
    public enum Kind: Sendable, Equatable {
        case video, audio
        /// An `onMetaData` script body ("onMetaData" string and ECMA array, no `@setDataFrame`).
        case metadata
    }

    public var kind: Kind
    /// Decode timestamp in milliseconds on the viewers' timeline (after ``TimestampCorrector``).
    public var timestamp: UInt32
    public var payload: ByteBuffer
    /// A video frame a decoder can start from (FLV frame type 1, legacy or enhanced).
    public var isKeyframe: Bool
    /// Codec configuration (AVC sequence header, AudioSpecificConfig, enhanced SequenceStart).
    public var isSequenceHeader: Bool
    /// Monotonic nanoseconds when the hub received the frame, for measuring delivery lag.
    public var receivedAt: UInt64
    /// The publishing session of the source the frame belongs to (1 for the first publisher, 2 after a republish).
    public var session = 0
    /// Wire encodings shared by all viewers (see ``flvTag``).
    public let encodings = EncodingCache()

    public init(kind: Kind, timestamp: UInt32, payload: ByteBuffer, isKeyframe: Bool = false,
                isSequenceHeader: Bool = false, receivedAt: UInt64 = 0) {
        self.kind = kind
        self.timestamp = timestamp
        self.payload = payload
        self.isKeyframe = isKeyframe
        self.isSequenceHeader = isSequenceHeader
        self.receivedAt = receivedAt
    }

    /// Classifies a publisher's video or audio message body. Bodies too short to carry a header
    /// are still frames (they are forwarded as they came), just never keyframes or configuration.
    public init(kind: Kind, timestamp: UInt32, payload: ByteBuffer, receivedAt: UInt64) {
        var key = false
        var config = false
        switch kind {
        case .video:
            if let h = try? VideoTagHeader(parsing: payload) {
                key = h.frameType == .key && h.packetType != .sequenceEnd
                config = h.packetType == .sequenceStart
            }
        case .audio:
            if let h = try? AudioTagHeader(parsing: payload) { config = h.packetType == .sequenceStart }
        case .metadata:
            config = true
        }
        self.init(kind: kind, timestamp: timestamp, payload: payload, isKeyframe: key && !config,
                  isSequenceHeader: config, receivedAt: receivedAt)
    }

    /// Sequence headers and metadata: what a decoder needs before any frame, and what skipping keeps.
    public var isConfiguration: Bool { isSequenceHeader || kind == .metadata }
    public var size: Int { payload.readableBytes }

    /// The whole FLV tag (header, body, PreviousTagSize), encoded once for all HTTP-FLV viewers.
    public var flvTag: ByteBuffer {
        encodings.encoding(.init(format: 1)) {
            var out = ByteBuffer()
            out.reserveCapacity(FLVTag.headerSize + size + 4)
            FLVTag.write(type: tagType, timestamp: timestamp, body: payload, to: &out)
            return out
        }
    }

    /// The FLV tag type that carries this frame.
    public var tagType: TagType {
        switch kind {
        case .video: .video
        case .audio: .audio
        case .metadata: .script
        }
    }
}
