/// A small deterministic generator (SplitMix64) so that mutation tests and handshakes are reproducible.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64

    public init(state: UInt64) { self.state = state }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// `bytes` with `count` random bytes overwritten: the mutation all our fuzz-style tests apply.
    public mutating func mutate(_ bytes: [UInt8], count: Int = 8) -> [UInt8] {
        guard !bytes.isEmpty else { return bytes }
        var out = bytes
        for _ in 0..<count {
            out[Int.random(in: 0..<out.count, using: &self)] = UInt8.random(in: 0...255, using: &self)
        }
        return out
    }
}
