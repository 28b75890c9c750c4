#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A stream's time (ms, the hub's timeline) as NTP timestamps for RTCP sender reports: one mapping per viewer,
/// shared by its audio and video, so the browser can line the two up (RFC 3550 section 6.4.1). It is anchored to
/// the wall clock once; the stream's time runs with real time after that, so the reports advance with it.
struct StreamNTPClock: Sendable, Equatable {
    let anchorMs: Double
    let anchorNTP: UInt64

    /// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
    static let unixToNTP: UInt64 = 2_208_988_800

    init(streamMs: Double, unixNanoseconds: UInt64) {
        anchorMs = streamMs
        let seconds = unixNanoseconds / 1_000_000_000 + Self.unixToNTP
        let fraction = (unixNanoseconds % 1_000_000_000) << 32 / 1_000_000_000
        anchorNTP = seconds << 32 | fraction
    }

    func ntp(_ streamMs: Double) -> UInt64 {
        let delta = (streamMs - anchorMs) / 1000 * 4_294_967_296
        return anchorNTP &+ UInt64(bitPattern: Int64(delta.rounded()))
    }

    static func wallClockNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
