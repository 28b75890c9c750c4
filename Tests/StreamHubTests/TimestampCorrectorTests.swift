import StreamHub
import Testing

@Suite struct TimestampCorrectorTests {
    @Test func passesThroughOneSession() {
        var t = TimestampCorrector()
        t.beginSession()
        var out: [UInt32] = []
        for i in 0..<5 { out.append(t.correct(UInt32(1000 + i * 40), nowMs: Int64(i * 40))) }
        #expect(out == [1000, 1040, 1080, 1120, 1160])
    }

    @Test func republishContinuesAfterTheOutage() {
        var t = TimestampCorrector()
        t.beginSession()
        _ = t.correct(0, nowMs: 10_000)
        #expect(t.correct(5000, nowMs: 15_000) == 5000)
        // The publisher is away for 3 s and comes back with timestamps from 0.
        t.beginSession()
        #expect(t.correct(0, nowMs: 18_000) == 8000)
        #expect(t.correct(40, nowMs: 18_040) == 8040)
    }

    @Test func republishWithLaterTimestampsDoesNotJumpAhead() {
        var t = TimestampCorrector()
        t.beginSession()
        _ = t.correct(100, nowMs: 0)
        t.beginSession()
        // An encoder that resumes at 1 hour: viewers see only the 500 ms the stream was away.
        #expect(t.correct(3_600_000, nowMs: 500) == 600)
    }

    @Test func smallInterleavingIsKept() {
        var t = TimestampCorrector()
        t.beginSession()
        #expect(t.correct(1000, nowMs: 0) == 1000)
        #expect(t.correct(980, nowMs: 0) == 980)  // audio slightly behind video
        #expect(t.correct(1040, nowMs: 40) == 1040)
    }

    @Test func glitchesInsideASessionAreSmoothed() {
        var t = TimestampCorrector()
        t.beginSession()
        _ = t.correct(50_000, nowMs: 0)
        // Went back 50 s: continue from the last output, 40 ms on as on the wall clock.
        #expect(t.correct(10, nowMs: 40) == 50_040)
        #expect(t.correct(50, nowMs: 80) == 50_080)
        #expect(t.correct(900_000, nowMs: 120) == 50_120)  // jumped ahead 15 min: same
        // Two frames in the same millisecond across a glitch still get distinct timestamps.
        #expect(t.correct(5, nowMs: 120) == 50_121)
    }

    @Test func wrapsAround32Bits() {
        var t = TimestampCorrector()
        t.beginSession()
        #expect(t.correct(UInt32.max - 39, nowMs: 0) == UInt32.max - 39)
        #expect(t.correct(0, nowMs: 40) == 0)  // 2^32 ms after start, wrapped like RTMP itself
        #expect(t.correct(40, nowMs: 80) == 40)
    }
}
