/// A token bucket per source IP for 401 and 438 answers. A challenge with REALM, NONCE and SOFTWARE is several
/// times larger than the request that provoked it, so a spoofed source could use the server as an amplifier
/// (coturn added the same limit in 4.13, docs/401-ratelimit.md). The defaults let a crowd behind one NAT through:
/// 16 participants, each with two peer connections and three TURN URLs, make about 100 challenged requests at
/// once. Beyond the bucket, requests are dropped unanswered. Bounded memory: buckets that have refilled are
/// forgotten, and past ``maximumSources`` the oldest are.
public struct ChallengeLimiter: Sendable {
    public var burst: Double
    public var perSecond: Double
    public var maximumSources = 10_000
    var buckets: [[UInt8]: (tokens: Double, at: Double)] = [:]

    public init(burst: Double = 200, perSecond: Double = 50) { (self.burst, self.perSecond) = (burst, perSecond) }

    /// Whether a challenge may go to `ip` at `now` (seconds); takes a token when it may.
    public mutating func allow(_ ip: [UInt8], now: Double) -> Bool {
        var b = buckets[ip] ?? (burst, now)
        b.tokens = min(burst, b.tokens + max(0, now - b.at) * perSecond)
        b.at = now
        guard b.tokens >= 1 else {
            buckets[ip] = b
            return false
        }
        b.tokens -= 1
        if buckets[ip] == nil && buckets.count >= maximumSources { prune(now: now) }
        buckets[ip] = b
        return true
    }

    mutating func prune(now: Double) {
        buckets = buckets.filter { $0.value.tokens + (now - $0.value.at) * perSecond < burst }
        if buckets.count >= maximumSources {
            let oldest = buckets.sorted { $0.value.at < $1.value.at }.prefix(buckets.count - maximumSources / 2)
            for (ip, _) in oldest { buckets[ip] = nil }
        }
    }
}
