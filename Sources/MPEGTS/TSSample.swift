import NIOCore

/// One elementary stream sample to mux into a PES packet (ISO/IEC 13818-1 2.4.3.7).
public struct TSSample: Sendable {
    /// Which elementary stream the sample belongs to.
    public enum Kind: Sendable {
        /// H.264 access unit.
        case video
        /// One raw AAC frame.
        case audio
    }

    /// Which elementary stream the sample belongs to.
    public var kind: Kind
    /// Decode timestamp, 90 kHz; taken modulo 2^33 like every MPEG-TS clock.
    public var dts: Int64
    /// Presentation timestamp, 90 kHz; taken modulo 2^33 like every MPEG-TS clock.
    public var pts: Int64
    /// True for a random access point (IDR for video).
    public var isKeyframe: Bool
    /// Video: AVCC access unit (length-prefixed NAL units). Audio: one raw AAC frame.
    public var data: ByteBuffer

    /// Creates a sample.
    public init(kind: Kind, dts: Int64, pts: Int64, isKeyframe: Bool, data: ByteBuffer) {
        self.kind = kind
        self.dts = dts
        self.pts = pts
        self.isKeyframe = isKeyframe
        self.data = data
    }
}
