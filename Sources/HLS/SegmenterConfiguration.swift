/// Settings of the HLS segmenter, shared by the MPEG-TS and the CMAF renditions (they come from one cut).
public struct SegmenterConfiguration: Sendable, Equatable {
    /// EXT-X-TARGETDURATION in seconds, fixed for the life of the playlist (RFC 8216 6.2.1). A segment is cut
    /// before it would exceed it, at a keyframe if there is one in time and otherwise where it stands.
    public var targetDuration = 6
    /// A segment ends at the first keyframe after this many milliseconds: with 1-2 s GOPs, segments of about
    /// 2 s keep players close to live.
    public var minimumDuration: Int64 = 2000
    /// PART-TARGET of the low-latency playlist, in milliseconds. No part is longer. A part also ends before
    /// every keyframe, so that a part starting with an IDR is a start point (INDEPENDENT=YES). Half a second
    /// lets a player sit about 1.5 s behind the publisher at two requests per part.
    public var partTarget: Int64 = 500
    /// The fewest segments listed in the playlist. More are listed while they last less than three target
    /// durations together: RFC 8216 6.2.2 forbids removing a segment from a live playlist if that would leave
    /// less (players start three target durations from the end).
    public var windowSegments = 6
    /// Segments kept in memory after they leave the playlist, for players a little behind.
    public var retainedAfterWindow = 4

    public init() {}

    /// PART-HOLD-BACK: how far behind the live edge a low-latency player starts. The HLS draft requires at least
    /// twice the part target and recommends three times.
    public var partHoldBack: Int64 { 3 * partTarget }

    /// How long a blocking playlist reload or a preload-hinted part request may wait. The HLS draft lets a server
    /// answer 503 after three target durations; a live stream normally satisfies the request within one part.
    public var blockingLimit: Int64 { 3 * Int64(targetDuration) * 1000 }
}
