import NIOCore

/// A CMAF chunk: one `moof` + `mdat` fragment of the low-latency rendition (EXT-X-PART).
///
/// The id ("SEGMENT.PART") never changes for the life of the stream's playlist, and the SHA-256 of the bytes is
/// published with it, so that a viewer can check a chunk it received from another viewer before playing it.
public struct Part: Sendable {
    /// Media sequence number of the segment the part belongs to.
    public var segment: Int
    /// Index of the part within its segment, from 0.
    public var index: Int
    /// Seconds.
    public var duration: Double
    /// Starts with an IDR (INDEPENDENT=YES): a player may start here.
    public var independent: Bool
    public var data: ByteBuffer
    /// SHA-256 of `data`.
    public var sha256: [UInt8]

    public var id: String { "\(segment).\(index)" }
}

/// What a P2P viewer is told of a part the moment it is made (docs/P2P.md, "Part announcements"): all a player
/// needs to fetch, check and place it without reloading the playlist.
public struct PartNotice: Sendable, Equatable {
    public var segment: Int
    public var index: Int
    public var bytes: Int
    public var sha256: [UInt8]
    public var durationMs: Int
    public var independent: Bool
    /// Wall-clock time the origin received its first frame (ms since the epoch): its segment's
    /// EXT-X-PROGRAM-DATE-TIME plus the parts before it, as a player reckons it from the playlist.
    public var wallClock: Int64
    /// The ``InitSection`` it needs (`init-ID.mp4`).
    public var initID: Int

    public var id: String { "\(segment).\(index)" }

    public init(segment: Int, index: Int, bytes: Int, sha256: [UInt8], durationMs: Int, independent: Bool, wallClock: Int64, initID: Int) {
        self.segment = segment
        self.index = index
        self.bytes = bytes
        self.sha256 = sha256
        self.durationMs = durationMs
        self.independent = independent
        self.wallClock = wallClock
        self.initID = initID
    }
}

/// An fMP4 initialization section (`ftyp` + `moov`): EXT-X-MAP of the segments cut while it was current.
public struct InitSection: Sendable {
    public var id: Int
    public var data: ByteBuffer
    /// RFC 6381 codecs of its tracks, e.g. `avc1.64001e,mp4a.40.2` (the MSE type of the player).
    public var codecs: String
}

/// A finished segment, in both renditions: MPEG-TS bytes, and the CMAF parts that make its fMP4 form.
public struct Segment: Sendable {
    public var sequence: Int
    /// Seconds.
    public var duration: Double
    public var discontinuity: Bool
    /// Starts with a keyframe (a player can start decoding here).
    public var independent: Bool
    /// Wall-clock time of the first frame's arrival, in milliseconds since the epoch (EXT-X-PROGRAM-DATE-TIME).
    public var programDateTime: Int64
    /// The MPEG-TS segment.
    public var data: ByteBuffer
    /// The fMP4 segment is its parts back to back.
    public var parts: [Part]
    /// The ``InitSection`` its parts need.
    public var initID: Int

    public var fmp4Size: Int { parts.reduce(0) { $0 + $1.data.readableBytes } }
}
