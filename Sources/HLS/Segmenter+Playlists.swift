extension Segmenter {
    /// URIs of the CMAF rendition, relative to the low-latency playlist (`/APP/STREAM/index.m3u8`).
    public static func initURI(_ id: Int) -> String { "init-\(id).mp4" }
    public static func segmentURI(_ sequence: Int) -> String { "seg-\(sequence).m4s" }
    public static func partURI(segment: Int, index: Int) -> String { "part-\(segment).\(index).m4s" }

    var window: [Segment] { segments.filter { $0.sequence >= windowStart } }

    /// The MPEG-TS playlist: the finished segments of the window (at least ``SegmenterConfiguration/windowSegments``
    /// and three target durations).
    public var playlist: MediaPlaylist {
        let window = window
        return MediaPlaylist(
            targetDuration: configuration.targetDuration,
            mediaSequence: window.first?.sequence ?? nextSequence,
            discontinuitySequence: discontinuitiesBeforeWindow,
            entries: window.map {
                .init(sequence: $0.sequence, duration: $0.duration, discontinuity: $0.discontinuity,
                      uri: "\(name)-\($0.sequence).ts", programDateTime: $0.programDateTime)
            },
            independentSegments: window.allSatisfy(\.independent))
    }

    /// The low-latency CMAF playlist: the same window of finished segments as fMP4, then the parts of the
    /// segment in progress and a preload hint for the part being made. Parts are listed for the segments
    /// within three target durations of the live edge (the HLS draft's minimum), the rest by EXTINF only.
    public var lowLatencyPlaylist: MediaPlaylist {
        let window = window
        var entries: [MediaPlaylist.Entry] = window.map {
            .init(sequence: $0.sequence, duration: $0.duration, discontinuity: $0.discontinuity,
                  uri: Self.segmentURI($0.sequence), map: Self.initURI($0.initID), programDateTime: $0.programDateTime,
                  parts: Self.partEntries($0.parts))
        }
        if let open, !open.parts.isEmpty {
            entries.append(.init(sequence: open.sequence, duration: nil, discontinuity: open.discontinuity, uri: nil,
                                 map: Self.initURI(open.initID), programDateTime: open.programDateTime,
                                 parts: Self.partEntries(open.parts)))
        }
        // Drop the part lists of entries more than three target durations behind the edge.
        var fromEdge = 0.0
        let limit = Double(3 * configuration.targetDuration)
        for i in entries.indices.reversed() {
            if fromEdge >= limit { entries[i].parts = [] }
            fromEdge += entries[i].duration ?? entries[i].parts.reduce(0) { $0 + $1.duration }
        }
        let next = nextPart
        return MediaPlaylist(
            targetDuration: configuration.targetDuration,
            mediaSequence: entries.first?.sequence ?? nextSequence,
            discontinuitySequence: discontinuitiesBeforeWindow,
            entries: entries,
            independentSegments: window.allSatisfy(\.independent) && (open?.independent ?? true),
            lowLatency: .init(partTarget: Double(configuration.partTarget) / 1000,
                              partHoldBack: Double(configuration.partHoldBack) / 1000,
                              preloadHint: Self.partURI(segment: next.segment, index: next.index)))
    }

    static func partEntries(_ parts: [Part]) -> [MediaPlaylist.PartEntry] {
        parts.map {
            .init(duration: $0.duration, uri: partURI(segment: $0.segment, index: $0.index), independent: $0.independent,
                  sha256: $0.sha256)
        }
    }
}
