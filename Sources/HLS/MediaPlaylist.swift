/// An HLS media playlist for a live sliding window: RFC 8216 (sections 4.3.3 and 6.2.1) for the MPEG-TS
/// rendition, and the low-latency tags of the HLS second edition (draft-pantos-hls-rfc8216bis, 4.4.3.7-8,
/// 4.4.4.9, 4.4.5.3) for the CMAF rendition.
///
/// `targetDuration` is fixed for the life of the playlist: RFC 8216 6.2.1 forbids changing it, and every
/// segment's duration, rounded to the nearest second, must not exceed it (the ``Segmenter`` guarantees that).
public struct MediaPlaylist: Sendable, Equatable {
    /// A partial segment (EXT-X-PART).
    public struct PartEntry: Sendable, Equatable {
        /// Seconds.
        public var duration: Double
        public var uri: String
        public var independent: Bool
        /// The part's SHA-256, written as `X-SHA256="BASE64"` so that a P2P viewer can check a copy it got from
        /// another viewer (docs/P2P.md). Clients ignore attributes they do not know.
        public var sha256: [UInt8]?

        public init(duration: Double, uri: String, independent: Bool, sha256: [UInt8]? = nil) {
            self.duration = duration
            self.uri = uri
            self.independent = independent
            self.sha256 = sha256
        }
    }

    public struct Entry: Sendable, Equatable {
        public var sequence: Int
        /// Seconds; nil for the segment in progress, which the low-latency playlist lists by its parts only.
        public var duration: Double?
        /// The segment follows a break in the stream (a republish): EXT-X-DISCONTINUITY precedes it.
        public var discontinuity: Bool
        /// Nil for the segment in progress.
        public var uri: String?
        /// Its initialization section (EXT-X-MAP), written when it differs from the previous entry's.
        public var map: String?
        /// Milliseconds since the epoch (EXT-X-PROGRAM-DATE-TIME).
        public var programDateTime: Int64?
        public var parts: [PartEntry]

        public init(sequence: Int, duration: Double?, discontinuity: Bool, uri: String?, map: String? = nil,
                    programDateTime: Int64? = nil, parts: [PartEntry] = []) {
            self.sequence = sequence
            self.duration = duration
            self.discontinuity = discontinuity
            self.uri = uri
            self.map = map
            self.programDateTime = programDateTime
            self.parts = parts
        }
    }

    /// The low-latency attributes (EXT-X-SERVER-CONTROL, EXT-X-PART-INF, EXT-X-PRELOAD-HINT).
    public struct LowLatency: Sendable, Equatable {
        /// Seconds.
        public var partTarget: Double
        /// Seconds.
        public var partHoldBack: Double
        /// The part being made (EXT-X-PRELOAD-HINT); nil once the playlist has ended.
        public var preloadHint: String?

        public init(partTarget: Double, partHoldBack: Double, preloadHint: String?) {
            self.partTarget = partTarget
            self.partHoldBack = partHoldBack
            self.preloadHint = preloadHint
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
    public var lowLatency: LowLatency?

    public init(targetDuration: Int, mediaSequence: Int = 0, discontinuitySequence: Int = 0, entries: [Entry] = [],
                independentSegments: Bool = true, lowLatency: LowLatency? = nil) {
        self.targetDuration = targetDuration
        self.mediaSequence = mediaSequence
        self.discontinuitySequence = discontinuitySequence
        self.entries = entries
        self.independentSegments = independentSegments
        self.lowLatency = lowLatency
    }

    /// The playlist text. Version 3 (floating-point EXTINF durations); version 6 once it has EXT-X-MAP.
    public func render() -> String {
        let hasMap = entries.contains { $0.map != nil }
        var lines = ["#EXTM3U", "#EXT-X-VERSION:\(hasMap ? 6 : 3)", "#EXT-X-TARGETDURATION:\(targetDuration)"]
        if let ll = lowLatency {
            lines.append("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=\(Self.format(ll.partHoldBack))")
            lines.append("#EXT-X-PART-INF:PART-TARGET=\(Self.format(ll.partTarget))")
        }
        lines.append("#EXT-X-MEDIA-SEQUENCE:\(mediaSequence)")
        if discontinuitySequence > 0 { lines.append("#EXT-X-DISCONTINUITY-SEQUENCE:\(discontinuitySequence)") }
        if independentSegments { lines.append("#EXT-X-INDEPENDENT-SEGMENTS") }
        var map: String?
        for e in entries {
            if e.discontinuity { lines.append("#EXT-X-DISCONTINUITY") }
            if let m = e.map, m != map {
                lines.append("#EXT-X-MAP:URI=\"\(m)\"")
                map = m
            }
            if let pdt = e.programDateTime, pdt > 0 { lines.append("#EXT-X-PROGRAM-DATE-TIME:\(Self.iso8601(pdt))") }
            for p in e.parts {
                lines.append("#EXT-X-PART:DURATION=\(Self.format(p.duration)),URI=\"\(p.uri)\"" + (p.independent ? ",INDEPENDENT=YES" : "")
                             + (p.sha256.map { ",X-SHA256=\"\(Self.base64($0))\"" } ?? ""))
            }
            if let d = e.duration, let uri = e.uri {
                lines.append("#EXTINF:\(Self.format(d)),")
                lines.append(uri)
            }
        }
        if ended {
            lines.append("#EXT-X-ENDLIST")
        } else if let hint = lowLatency?.preloadHint {
            lines.append("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"\(hint)\"")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Three decimals, without Foundation.
    static func format(_ seconds: Double) -> String {
        let ms = Int((max(0, seconds) * 1000).rounded())
        let frac = ms % 1000
        let pad = frac < 10 ? "00" : frac < 100 ? "0" : ""
        return "\(ms / 1000).\(pad)\(frac)"
    }

    /// `2026-11-22T05:31:07.123Z` from milliseconds since the epoch (RFC 3339), without Foundation.
    static func iso8601(_ ms: Int64) -> String {
        let days = ms >= 0 ? ms / 86_400_000 : (ms - 86_399_999) / 86_400_000
        let inDay = ms - days * 86_400_000
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ v: Int64, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(inDay / 3_600_000, 2)):"
            + "\(pad(inDay / 60000 % 60, 2)):\(pad(inDay / 1000 % 60, 2)).\(pad(inDay % 1000, 3))Z"
    }

    /// RFC 4648 base64 (the HLS module has no Foundation).
    static func base64(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i < bytes.count {
            let n = bytes.count - i
            let b0 = UInt32(bytes[i]), b1 = n > 1 ? UInt32(bytes[i + 1]) : 0, b2 = n > 2 ? UInt32(bytes[i + 2]) : 0
            let v = b0 << 16 | b1 << 8 | b2
            out.append(alphabet[Int(v >> 18 & 63)])
            out.append(alphabet[Int(v >> 12 & 63)])
            out.append(n > 1 ? alphabet[Int(v >> 6 & 63)] : UInt8(ascii: "="))
            out.append(n > 2 ? alphabet[Int(v & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
