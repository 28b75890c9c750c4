@testable import SRTP
import Testing
import TestSupport

@Suite struct ReplayWindowTests {
    /// The window against a set of every index accepted: random jumps of 1 to 3000 forward and back, with the
    /// moves across word boundaries and round the ring that a bitmap gets wrong; 192 is a window shorter than its
    /// ring (256).
    @Test(arguments: [64, 128, 192, 1024])
    func agreesWithASetOfEveryIndex(size: Int) {
        var rng = SplitMix64(state: UInt64(size))
        var window = ReplayWindow(size: size)
        var accepted: Set<UInt64> = []
        var highest: UInt64 = 0
        for _ in 0..<20_000 {
            let jump = [1, 2, 63, 64, 65, 127, 128, 129, 1023, 1024, 1025, 3000].randomElement(using: &rng)!
            let index = Bool.random(using: &rng) || highest < UInt64(jump) ? highest + UInt64(jump) : highest - UInt64(jump)
            let delta = window.delta(ofIndex: index)
            let expected: ReplayWindow.Verdict = index > highest ? .fresh
                : highest - index >= UInt64(size) ? .tooOld : accepted.contains(index) ? .replayed : .fresh
            #expect(window.check(delta) == expected, "index \(index), highest \(highest)")
            if expected == .fresh {
                window.add(delta)
                accepted.insert(index)
                highest = max(highest, index)
            }
            #expect(window.highest == highest)
        }
    }

    /// RFC 3711 Appendix A as libsrtp reads it: the rollover counter is guessed one either side of the current,
    /// whichever puts the index nearest; never below 0 before the index passes 2^15.
    @Test func estimatesTheRolloverCounter() {
        var w = ReplayWindow(size: 128)
        #expect(w.estimate(65000) == (65000, 65000))   // first packets: ROC 0 whatever the sequence number
        w.add(65000)
        #expect(w.estimate(100) == (1 << 16 | 100, 636))        // wrapped: ROC 1
        #expect(w.estimate(64000) == (64000, -1000))             // late, same ROC
        w.add(636)
        #expect(w.highest == 1 << 16 | 100)
        #expect(w.estimate(65500) == (65500, -136))              // from before the wrap: ROC 0
        #expect(w.estimate(30000) == (1 << 16 | 30000, 29900))   // ahead, same ROC
        #expect(w.estimate(40000) == (40000, -25636))            // nearer behind than ahead: ROC 0
    }
}
