import SFU
import Testing

/// NACKs towards publishers: what is asked for, when again, and when not any more.
@Suite struct NackRequesterTests {
    @Test func aGapIsAskedForAtOnceAndFilledByTheRetransmission() {
        var n = NackRequester()
        #expect(n.received(100, at: 0) == .new)
        #expect(n.received(101, at: 0.01) == .new)
        #expect(n.received(104, at: 0.02) == .afterGap)  // 102 and 103 missing
        #expect(n.due(at: 0.02, retryAfter: 0.1) == [102, 103])
        #expect(n.due(at: 0.05, retryAfter: 0.1) == [], "not again before a round trip")
        #expect(n.received(103, at: 0.06) == .filledGap)
        #expect(n.received(103, at: 0.07) == .duplicate, "a second copy is a duplicate")
        #expect(n.due(at: 0.13, retryAfter: 0.1) == [102], "102 is asked again after the round trip")
        #expect(n.received(102, at: 0.15) == .filledGap)
        #expect(n.missingCount == 0 && n.requested == 3 && n.recovered == 2)
        #expect(n.received(99, at: 0.2) == .duplicate, "older than the first and never wanted")
    }

    @Test func gapsAcrossTheSequenceWrap() {
        var n = NackRequester()
        _ = n.received(65534, at: 0)
        _ = n.received(1, at: 0.01)  // 65535 and 0 missing
        #expect(n.due(at: 0.01, retryAfter: 0.05) == [65535, 0])
        #expect(n.received(0, at: 0.02) == .filledGap)
    }

    @Test func givesUpAfterMaxTriesOrMaxAge() {
        var n = NackRequester()
        _ = n.received(1, at: 0)
        _ = n.received(3, at: 0)
        var asked = 0
        for i in 0..<20 { asked += n.due(at: Double(i) * 0.03, retryAfter: 0.02).count }
        #expect(asked == NackRequester.maxTries, "asked \(asked) times")
        _ = n.received(10, at: 1)  // 4 ... 9 missing
        #expect(n.due(at: 1, retryAfter: 0.05).count == 6)
        #expect(n.due(at: 2.5, retryAfter: 0.05) == [], "too old to be useful")
        #expect(n.missingCount == 0)
    }

    @Test func aHugeGapIsNotRepaired() {
        var n = NackRequester()
        _ = n.received(0, at: 0)
        _ = n.received(2000, at: 0.1)
        #expect(n.missingCount == 0 && n.due(at: 0.1, retryAfter: 0.05) == [])
        _ = n.received(2002, at: 0.2)
        #expect(n.due(at: 0.2, retryAfter: 0.05) == [2001], "and it goes on from there")
    }
}
