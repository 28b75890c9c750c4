import Foundation
import Testing
import TestSupport
@testable import Audio

/// Browsers' Opus to AAC for the hub: a tone encoded by libopus in 20 ms packets goes through the transcoder, and
/// what comes out is decoded by libavcodec's AAC decoder and looked at.
@Suite struct OpusToAACTests {
    /// `seconds` of a sine at `hz` (1/8 of full scale, both channels) as 20 ms Opus packets.
    static func tone(_ hz: Double, seconds: Double) throws -> [[UInt8]] {
        let encoder = try OpusEncoder(bitrate: 96_000)
        let frames = Int(seconds * 50)
        var packets: [[UInt8]] = []
        for f in 0..<frames {
            var pcm = [Float](repeating: 0, count: 2 * 960)
            for i in 0..<960 {
                let v = Float(0.125 * sin(2 * Double.pi * hz * Double(f * 960 + i) / 48000))
                pcm[2 * i] = v
                pcm[2 * i + 1] = v
            }
            packets.append(try encoder.encode(pcm[...]))
        }
        return packets
    }

    static func decode(_ units: [OpusToAAC.AccessUnit], config: [UInt8]) throws -> [Float] {
        let decoder = try AACDecoder(config: config)
        var pcm: [Float] = []
        for u in units { pcm += try decoder.decode(u.payload) }
        return pcm
    }

    /// Each access unit 1024 samples (21.33 ms) after the one before, on the stream's clock.
    static func continuous(_ units: [OpusToAAC.AccessUnit], from start: Int64) -> Bool {
        units.indices.allSatisfy { i in abs(units[i].timestamp - (start + Int64((Double(i - 1) * 1024 / 48).rounded(.down)))) <= 1 }
    }

    @Test func aToneComesOutAsAACLCAt48kHzStereoOnTheStreamsClock() throws {
        let t = try OpusToAAC()
        #expect(t.config.prefix(2) == [0x11, 0x90], "AAC LC, 48 kHz, stereo (ffmpeg adds an SBR sync extension)")
        var units: [OpusToAAC.AccessUnit] = []
        let start: Int64 = 5000
        for (i, p) in try Self.tone(1000, seconds: 2).enumerated() {
            units += t.transcode(p, at: start * 48 + Int64(i * 960))
        }
        // 100 packets of 960 samples: 93 whole access units fed, 92 out (the encoder holds one back), the first
        // one the encoder's priming.
        #expect(units.count == 92)
        #expect(units.first?.timestamp == start - 22, "the priming access unit starts 1024 samples before the first sample")
        #expect(Self.continuous(units, from: start), "\(units.prefix(5).map(\.timestamp))")
        let tone = ToneAnalysis(try Self.decode(units, config: t.config), expected: 1000)
        #expect(abs(tone.frequency - 1000) < 2, "\(tone)")
        #expect(tone.clicks == 0 && tone.gaps == 0, "\(tone)")
        #expect(t.stats.silenceMs == 0 && t.stats.concealedMs == 0 && t.stats.droppedMs == 0)
    }

    @Test func lostPacketsAreConcealedAndLongGapsAreSilenceWithoutAHoleInTheTimeline() throws {
        let t = try OpusToAAC()
        let packets = try Self.tone(440, seconds: 4)
        var units: [OpusToAAC.AccessUnit] = []
        // Two packets lost at 1 s; a second of nothing at 2 s (DTX or a muted track).
        let lost = Set([50, 51]).union(100..<150)
        for (i, p) in packets.enumerated() where !lost.contains(i) { units += t.transcode(p, at: Int64(1000 * 48 + i * 960)) }
        #expect(Self.continuous(units, from: 1000), "the AAC timeline has no hole")
        #expect(units.count == 186, "\(units.count): 4 s is 187 whole access units fed, one held back by the encoder")
        #expect(t.stats.concealedMs == 40, "\(t.stats.concealedMs)")
        #expect(t.stats.silenceMs == 1000, "\(t.stats.silenceMs)")
        let pcm = try Self.decode(units, config: t.config)
        // The silent second is silent: the tone stops at 2 s and resumes at 3 s (within a few ms of the AAC frame).
        let at = { (ms: Int) in pcm[2 * (ms * 48 + 1024)..<2 * ((ms + 100) * 48 + 1024)].map { abs($0) }.max() ?? 0 }
        #expect(at(2300) < 0.001 && at(2700) < 0.001, "\(at(2300)) \(at(2700))")
        #expect(at(1500) > 0.1 && at(3300) > 0.1)
    }

    @Test func theRealTimeFillGoesOnWithoutPacketsAndALatePacketLosesWhatWasWritten() throws {
        let t = try OpusToAAC()
        let packets = try Self.tone(440, seconds: 1)
        var units: [OpusToAAC.AccessUnit] = []
        for i in 0..<10 { units += t.transcode(packets[i], at: Int64(i * 960)) }
        #expect(t.fill(until: 48_000).count > 0)
        #expect(t.position == 48_000)
        // Packet 10 belongs at 200 ms, long written: left out whole.
        #expect(t.transcode(packets[10], at: 10 * 960).isEmpty)
        #expect(t.stats.droppedMs == 20)
        // Half of one that straddles the position is kept.
        _ = t.transcode(packets[11], at: 48_000 - 480)
        #expect(t.stats.droppedMs == 30 && t.position == 48_000 + 480)
    }

    @Test func aGapBeyondTheLongestFillRestartsTheTimelineAtThePacket() throws {
        let t = try OpusToAAC()
        let packets = try Self.tone(440, seconds: 1)
        for i in 0..<20 { _ = t.transcode(packets[i], at: Int64(i * 960)) }
        let later: Int64 = 60 * 48_000
        var units: [OpusToAAC.AccessUnit] = []
        for i in 20..<50 { units += t.transcode(packets[i], at: later + Int64((i - 20) * 960)) }
        #expect(t.stats.restarts == 1 && t.stats.silenceMs == 0)
        #expect(units.last.map { $0.timestamp > 60_000 } == true, "\(units.map(\.timestamp))")
        #expect(t.position == later + 30 * 960)
    }

    @Test func garbageIsCountedAndTheToneGoesOn() throws {
        let t = try OpusToAAC()
        let packets = try Self.tone(440, seconds: 1)
        var units: [OpusToAAC.AccessUnit] = []
        for (i, p) in packets.enumerated() {
            // Opus's TOC byte with a frame count code of 3 and a count of 0 is invalid.
            let bytes = i == 20 ? [0x03, 0x00] : i == 21 ? [] : p
            units += t.transcode(bytes, at: Int64(i * 960))
        }
        #expect(t.stats.decodeErrors >= 1)
        #expect(Self.continuous(units, from: 0))
        var rng = SplitMix64(state: 7)
        for _ in 0..<500 {
            let junk = (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = t.transcode(junk, at: t.position ?? 0)
        }
    }
}
