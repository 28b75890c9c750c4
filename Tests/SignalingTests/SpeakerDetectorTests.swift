import Signaling
import Testing

/// The active speaker from windows of audio levels (RFC 6464: 0 loudest, 127 silent), with time passed in.
@Suite struct SpeakerDetectorTests {
    /// Feeds one window every 200 ms; returns the changes with their times.
    static func run(_ windows: [[String: Double]], start: Double = 0) -> [(Double, String?)] {
        var d = SpeakerDetector()
        var out: [(Double, String?)] = []
        for (i, w) in windows.enumerated() {
            let t = start + Double(i) * 0.2
            if let change = d.window(w, now: t) { out.append((t, change)) }
        }
        return out
    }

    @Test func aSpeakerIsAnnouncedAfterTwoWindowsAndNobodyAfterOneSecondOfSilence() {
        let speech = Array(repeating: ["ann": 10.0, "bob": 127.0], count: 5)
        let silence = Array(repeating: ["ann": 127.0, "bob": 127.0], count: 6)
        let changes = Self.run(speech + silence)
        #expect(changes.map(\.1) == ["ann", nil])
        #expect(changes.map(\.0) == [0.2, 1.8], "\(changes)")
    }

    @Test func theLoudestSpeakerTakesTheFloorAndACoughDoesNot() {
        // Bob coughs for one window while Ann speaks; then Bob speaks louder for good.
        let windows: [[String: Double]] = [["ann": 30, "bob": 127], ["ann": 30, "bob": 127], ["ann": 30, "bob": 5],
                                           ["ann": 30, "bob": 127], ["ann": 30, "bob": 20], ["ann": 30, "bob": 20], ["ann": 30, "bob": 20]]
        #expect(Self.run(windows).map(\.1) == ["ann", "bob"])
        // Quiet sound (under -50 dBov) is not speech; a participant without packets is not either.
        #expect(Self.run([["ann": 60], ["ann": 60], [:], [:]]).isEmpty)
    }

    @Test func changesAreAtMostThreeASecond() {
        // Two people alternating every window would flap; confirmation and the minimum interval bound it.
        var windows: [[String: Double]] = []
        for i in 0..<50 { windows.append(i % 4 < 2 ? ["ann": 5, "bob": 127] : ["ann": 127, "bob": 5]) }
        let changes = Self.run(windows)
        #expect(!changes.isEmpty)
        for (a, b) in zip(changes, changes.dropFirst()) { #expect(b.0 - a.0 >= 1.0 / 3 - 1e-9, "\(changes)") }
    }
}
