import NIOCore

/// One sample of a fragment: a `trun` entry (ISO/IEC 14496-12 8.8.8) plus its bytes in `mdat`.
public struct Sample: Sendable {
    /// Duration in the track's timescale.
    public var duration: UInt32
    /// PTS minus DTS in the track's timescale; non-zero only for reordered (B-frame) video.
    public var compositionOffset: Int32
    /// True for a random access point: an IDR picture, or any audio frame.
    public var isSync: Bool
    /// Video: an AVCC access unit (length-prefixed NAL units, as in FLV). Audio: one raw AAC frame.
    public var data: ByteBuffer

    /// Creates a sample.
    public init(duration: UInt32, compositionOffset: Int32 = 0, isSync: Bool, data: ByteBuffer) {
        self.duration = duration
        self.compositionOffset = compositionOffset
        self.isSync = isSync
        self.data = data
    }
}
