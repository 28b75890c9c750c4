import RTP
import SFU
import Testing

@Suite struct TransportCCRecorderTests {
    let t0 = ContinuousClock.now

    @Test func reportsArrivalsLossAndDeltasFromTheReferenceTime() throws {
        var r = TransportCCRecorder(start: t0)
        // 65534, 65535, (0 lost), 1 across the wrap; arrivals at 130 ms, 131 ms, 140 ms.
        r.record(65534, at: t0 + .milliseconds(130))
        r.record(65535, at: t0 + .milliseconds(131))
        r.record(1, at: t0 + .milliseconds(140))
        let fbMade = r.feedback(senderSSRC: 1, mediaSSRC: 2)
        let fb = try #require(fbMade)
        #expect(fb.baseSequence == 65534 && fb.referenceTime == 2 && fb.feedbackCount == 0, "130 ms is 2 x 64 ms + 2 ms")
        #expect(fb.deltas == [8, 4, nil, 36], "in 250 us ticks: 2 ms, 1 ms, lost, 9 ms")
        let none = r.feedback(senderSSRC: 1, mediaSSRC: 2)
        #expect(none == nil, "nothing new")
        // Late arrival of 0 is not reported again; the next feedback starts after 1.
        r.record(0, at: t0 + .milliseconds(150))
        r.record(2, at: t0 + .milliseconds(200))
        let nextMade = r.feedback(senderSSRC: 1, mediaSSRC: 2)
        let next = try #require(nextMade)
        #expect(next.baseSequence == 2 && next.deltas.count == 1 && next.feedbackCount == 1)
    }

    @Test func reorderedPacketsGetNegativeDeltas() throws {
        var r = TransportCCRecorder(start: t0)
        r.record(10, at: t0 + .milliseconds(10))
        r.record(12, at: t0 + .milliseconds(11))
        r.record(11, at: t0 + .milliseconds(12))
        let fbMade = r.feedback(senderSSRC: 1, mediaSSRC: 2)
        let fb = try #require(fbMade)
        #expect(fb.deltas == [40, 8, -4])
        // What it writes parses back to the same deltas.
        var bytes: [UInt8] = []
        RTCPPacket.transportFeedback(fb).write(to: &bytes)
        #expect(try RTCPPacket.parseCompound(bytes) == [.transportFeedback(fb)])
    }
}
