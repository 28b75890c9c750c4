@testable import HLS
import NIOCore
import StreamHub
import Testing

/// The playlist rules of RFC 8216 and of the HLS second edition's low-latency tags, checked on every playlist a
/// long, eventful stream produces, for both renditions:
/// - the target duration and part target never change (RFC 8216 6.2.1), every segment fits the target duration
///   and every part fits the part target (draft-pantos-hls-rfc8216bis 4.4.3.7);
/// - the media and discontinuity sequences only grow, segments are numbered without gaps, and a segment leaves
///   the playlist only if three target durations remain (RFC 8216 6.2.2);
/// - a finished segment never changes once listed (6.2.1); a part, once listed, stays the same part; the parts
///   of a finished segment add up to its duration, and the first part of an independent segment is INDEPENDENT;
/// - a live low-latency playlist ends with a preload hint for the part after the last one listed.
@Suite struct PlaylistRulesTests {
    struct Validator {
        var previous: MediaPlaylist?
        var checked = 0
        var partsSeen = 0

        mutating func check(_ p: MediaPlaylist) {
            guard !p.entries.isEmpty else { return }  // never served: the origin answers 404 until a segment exists
            checked += 1
            for e in p.entries {
                if let d = e.duration {
                    #expect(d.rounded() <= Double(p.targetDuration), "segment \(e.sequence) lasts \(d) s")
                } else {
                    #expect(e.sequence == p.entries.last?.sequence, "only the last entry may be in progress")
                }
                if let ll = p.lowLatency {
                    partsSeen += e.parts.count
                    for part in e.parts {
                        #expect(part.duration <= ll.partTarget + 1e-9, "part \(part.uri) lasts \(part.duration) s")
                        #expect(part.duration > 0, "part \(part.uri) of \(p.entries.map { "\($0.sequence):\($0.parts.map(\.duration))" })")
                    }
                    if let d = e.duration, !e.parts.isEmpty {
                        #expect(abs(e.parts.reduce(0) { $0 + $1.duration } - d) < 0.0015, "parts of \(e.sequence) do not add up")
                    }
                    if let first = e.parts.first, e.duration != nil || e.parts.count > 0 {
                        if p.independentSegments { #expect(first.independent) }
                    }
                    #expect(e.map != nil, "every CMAF segment has an init section")
                }
            }
            #expect(zip(p.entries, p.entries.dropFirst()).allSatisfy { $1.sequence == $0.sequence + 1 })
            #expect(p.entries.first?.sequence == p.mediaSequence)
            if let ll = p.lowLatency, !p.ended, let last = p.entries.last {
                let expected = last.duration == nil
                    ? Segmenter.partURI(segment: last.sequence, index: last.parts.count)
                    : Segmenter.partURI(segment: last.sequence + 1, index: 0)
                #expect(ll.preloadHint == expected)
                #expect(ll.partHoldBack >= 2 * ll.partTarget)
            }
            if let old = previous {
                #expect(p.targetDuration == old.targetDuration)
                #expect(p.lowLatency?.partTarget == old.lowLatency?.partTarget)
                #expect(p.mediaSequence >= old.mediaSequence)
                if p.mediaSequence > old.mediaSequence {
                    // RFC 8216 6.2.2: a segment leaves a live playlist only if three target durations remain.
                    let listed = p.entries.compactMap(\.duration).reduce(0, +)
                    #expect(listed >= Double(3 * p.targetDuration), "only \(listed) s listed after removing a segment")
                }
                #expect(p.discontinuitySequence >= old.discontinuitySequence)
                for e in p.entries {
                    guard let before = old.entries.first(where: { $0.sequence == e.sequence }) else { continue }
                    if before.duration != nil {
                        // Finished: unchanged, except that its part list may go once it is far from the edge.
                        var a = before, b = e
                        if b.parts.isEmpty { a.parts = [] }
                        #expect(a == b)
                    } else {
                        // In progress: the parts listed before are still listed, unchanged, in order.
                        #expect(Array(e.parts.prefix(before.parts.count)) == before.parts)
                        #expect(e.discontinuity == before.discontinuity && e.map == before.map)
                    }
                }
                // Discontinuities that left the window are counted: the count of tags up to a segment is stable.
                let dropped = old.entries.filter { $0.sequence < p.mediaSequence }
                #expect(p.discontinuitySequence == old.discontinuitySequence + dropped.filter(\.discontinuity).count)
            }
            previous = p
        }
    }

    /// Five sessions with different GOPs (1 s, 3 s, 10 s, 1 s, 2 s) and frame rates (25, 30 and 29.97 fps),
    /// gaps between them, and sequence headers sent again in the middle of each (as encoders do on reconnect).
    @Test(arguments: [40.0, 100.0 / 3, 1001.0 / 30])
    func rulesHoldThroughRepublishesAndGOPChanges(frameInterval: Double) {
        var s = Segmenter(name: "cam")
        var ts = Validator()
        var ll = Validator()
        var start = 0
        for (session, gopSeconds) in [1, 3, 10, 1, 2].enumerated() {
            if session > 0 {
                s.endSession()
                ts.check(s.playlist)
                ll.check(s.lowLatencyPlaylist)
                start += 1500
            }
            for seconds in [12, 8] {
                SegmenterTests.feed(&s, from: start, seconds: seconds, gopSeconds: gopSeconds, frameInterval: frameInterval) { s in
                    ts.check(s.playlist)
                    ll.check(s.lowLatencyPlaylist)
                }
                start += seconds * 1000
            }
        }
        #expect(ts.checked > 1000 && ll.partsSeen > 1000)
        #expect(s.playlist.discontinuitySequence >= 3)  // four republishes; the last is still in the 18 s window
        #expect(s.playlist.targetDuration == 6)
        #expect(s.droppedFrames == 0)
    }
}
