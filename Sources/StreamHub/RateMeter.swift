/// Bits per second over the last few whole seconds (pure; time passed in as nanoseconds).
public struct RateMeter: Sendable {
    let window: Int
    var buckets: [Int]
    var currentSecond: UInt64 = 0

    public init(windowSeconds: Int = 5) {
        window = max(1, windowSeconds)
        buckets = Array(repeating: 0, count: window + 1)
    }

    public mutating func add(bytes: Int, now: UInt64) {
        advance(to: now / 1_000_000_000)
        buckets[Int(currentSecond % UInt64(buckets.count))] += bytes
    }

    /// Average over the last `window` complete seconds.
    public mutating func bitsPerSecond(now: UInt64) -> Int {
        advance(to: now / 1_000_000_000)
        let current = Int(currentSecond % UInt64(buckets.count))
        let total = buckets.indices.filter { $0 != current }.reduce(0) { $0 + buckets[$1] }
        return total * 8 / window
    }

    mutating func advance(to second: UInt64) {
        guard second > currentSecond else { return }
        let steps = min(second - currentSecond, UInt64(buckets.count))
        for i in 1...steps { buckets[Int((currentSecond + i) % UInt64(buckets.count))] = 0 }
        currentSecond = second
    }
}
