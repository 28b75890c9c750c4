/// An HLS media playlist for a live sliding window (RFC 8216, section 4.3.3 and 6.2.1).
///
/// `targetDuration` is fixed for the life of the playlist: RFC 8216 6.2.1 forbids changing it, and every
/// segment's duration, rounded to the nearest second, must not exceed it (the ``Segmenter`` guarantees that).
public struct MediaPlaylist: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var sequence: Int
        /// Seconds.
        public var duration: Double
        /// The segment follows a break in the stream (a republish): EXT-X-DISCONTINUITY precedes it.
        public var discontinuity: Bool
        public var uri: String

        public init(sequence: Int, duration: Double, discontinuity: Bool, uri: String) {
            self.sequence = sequence
            self.duration = duration
            self.discontinuity = discontinuity
            self.uri = uri
        }
    }

    public var targetDuration: Int
    /// Sequence number of the first entry (EXT-X-MEDIA-SEQUENCE).
    public var mediaSequence: Int
    /// Discontinuities that have left the window (EXT-X-DISCONTINUITY-SEQUENCE).
    public var discontinuitySequence: Int
    public var entries: [Entry]
    /// Every segment starts with a keyframe (EXT-X-INDEPENDENT-SEGMENTS).
    public var independentSegments: Bool
    /// No segment will be added (EXT-X-ENDLIST): players stop reloading. Without it, a player of a live
    /// playlist keeps waiting for more.
    public var ended = false

    public init(targetDuration: Int, mediaSequence: Int = 0, discontinuitySequence: Int = 0, entries: [Entry] = [],
                independentSegments: Bool = true) {
        self.targetDuration = targetDuration
        self.mediaSequence = mediaSequence
        self.discontinuitySequence = discontinuitySequence
        self.entries = entries
        self.independentSegments = independentSegments
    }

    /// The playlist text. Version 3 (floating-point EXTINF durations).
    public func render() -> String {
        var lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:\(targetDuration)",
                     "#EXT-X-MEDIA-SEQUENCE:\(mediaSequence)"]
        if discontinuitySequence > 0 { lines.append("#EXT-X-DISCONTINUITY-SEQUENCE:\(discontinuitySequence)") }
        if independentSegments { lines.append("#EXT-X-INDEPENDENT-SEGMENTS") }
        for e in entries {
            if e.discontinuity { lines.append("#EXT-X-DISCONTINUITY") }
            lines.append("#EXTINF:\(Self.format(e.duration)),")
            lines.append(e.uri)
        }
        if ended { lines.append("#EXT-X-ENDLIST") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Three decimals, without Foundation.
    static func format(_ seconds: Double) -> String {
        let ms = Int((max(0, seconds) * 1000).rounded())
        let frac = ms % 1000
        let pad = frac < 10 ? "00" : frac < 100 ? "0" : ""
        return "\(ms / 1000).\(pad)\(frac)"
    }
}
