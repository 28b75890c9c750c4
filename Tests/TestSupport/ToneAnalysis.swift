import Foundation

/// What a listener would notice in interleaved stereo at 48 kHz: the tone's frequency (from zero crossings of
/// the left channel), its level, and clicks and gaps.
public struct ToneAnalysis: Sendable, CustomStringConvertible {
    public var frequency: Double
    public var rms: Double
    /// Sample-to-sample steps far steeper than the tone allows (a discontinuity), and runs of 2 ms or more of
    /// near-silence inside the tone.
    public var clicks: Int
    public var gaps: Int
    public var channelsDiffer: Bool

    public init(_ pcm: some Collection<Float>, expected: Double, amplitude: Double = 0.125) {
        let samples = Array(pcm)
        var left = stride(from: 0, to: samples.count, by: 2).map { Double(samples[$0]) }
        var right = stride(from: 1, to: samples.count, by: 2).map { Double(samples[$0]) }
        // The tone itself: from where it first reaches a quarter of its level to where it last does, less 10 ms at
        // each end (the encoder's fade-in, and the silence after it).
        let loud = left.indices.filter { abs(left[$0]) > amplitude / 4 }
        if let first = loud.first.map({ $0 + 480 }), let last = loud.last.map({ $0 - 480 }), first < last {
            left = Array(left[first...last])
            right = Array(right[first...last])
        }
        var crossings: [Int] = []
        for i in 1..<max(1, left.count) where left[i - 1] < 0 && left[i] >= 0 { crossings.append(i) }
        if crossings.count >= 2 {
            frequency = Double(crossings.count - 1) * 48000 / Double(crossings.last! - crossings.first!)
        } else {
            frequency = 0
        }
        rms = (left.reduce(0) { $0 + $1 * $1 } / Double(max(1, left.count))).squareRoot()
        // The steepest step a sine of this frequency and level takes, with room for coding noise.
        let steepest = 2 * Double.pi * expected / 48000 * amplitude
        clicks = zip(left, left.dropFirst()).filter { abs($1 - $0) > 3 * steepest + 0.01 }.count
        var run = 0
        gaps = 0
        for x in left {
            if abs(x) < amplitude / 50 { run += 1 } else { run = 0 }
            if run == 96 { gaps += 1 }
        }
        channelsDiffer = zip(left, right).contains { abs($0 - $1) > 0.02 }
    }

    public var description: String {
        "\(String(format: "%.2f", frequency)) Hz, rms \(String(format: "%.4f", rms)), \(clicks) clicks, \(gaps) gaps"
    }
}
