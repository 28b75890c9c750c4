@testable import HLS
import NIOCore
import StreamHub
import Testing

/// RFC 8216 rules checked on every playlist a long, eventful stream produces: the target duration never
/// changes (6.2.1), every segment fits it, the media and discontinuity sequences only grow, and a segment
/// never changes once listed (6.2.1: "the server MUST NOT change the Media Playlist file, except to ...").
@Suite struct PlaylistRulesTests {
    struct Validator {
        var previous: MediaPlaylist?
        var checked = 0

        mutating func check(_ p: MediaPlaylist) {
            checked += 1
            for e in p.entries {
                #expect(e.duration.rounded() <= Double(p.targetDuration), "segment \(e.sequence) lasts \(e.duration) s")
            }
            #expect(zip(p.entries, p.entries.dropFirst()).allSatisfy { $1.sequence == $0.sequence + 1 })
            #expect(p.entries.first?.sequence == p.mediaSequence)
            if let old = previous {
                #expect(p.targetDuration == old.targetDuration)
                #expect(p.mediaSequence >= old.mediaSequence)
                #expect(p.discontinuitySequence >= old.discontinuitySequence)
                for e in p.entries {
                    if let before = old.entries.first(where: { $0.sequence == e.sequence }) { #expect(before == e) }
                }
                // Discontinuities that left the window are counted: the count of tags up to a segment is stable.
                let dropped = old.entries.filter { $0.sequence < p.mediaSequence }
                #expect(p.discontinuitySequence == old.discontinuitySequence + dropped.filter(\.discontinuity).count)
            }
            previous = p
        }
    }

    @Test func rulesHoldThroughRepublishesAndGOPChanges() {
        var s = Segmenter(name: "cam")
        var v = Validator()
        var ts = 0
        // Five sessions with different GOPs (1 s, 2 s, 3 s, 10 s), gaps between them, and sequence headers sent
        // again in the middle of each (as encoders do on reconnect or periodically).
        for (session, gop) in [25, 75, 250, 25, 50].enumerated() {
            if session > 0 {
                if let done = s.endSession() { _ = done; v.check(s.playlist) }
                ts += 1500
            }
            for seconds in [12, 8] {
                for seg in SegmenterTests.feed(&s, from: ts, seconds: seconds, gop: gop, config: true) {
                    _ = seg
                    v.check(s.playlist)
                }
                ts += seconds * 1000
            }
        }
        #expect(v.checked > 40)
        #expect(s.playlist.discontinuitySequence >= 4)
        #expect(s.playlist.targetDuration == 6)
    }
}
