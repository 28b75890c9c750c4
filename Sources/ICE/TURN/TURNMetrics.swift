import Metrics
import NIOConcurrencyHelpers

/// TURN's Prometheus series (docs/TURN.md, Metrics), brought up to date from ``Allocations``' counters about once a
/// second: the decisions stay free of metrics calls on the relaying path, and a scrape sees figures at most a second
/// old.
final class TURNMetrics: Sendable {
    /// The `liveswarm_turn_NAME_total` counters, in the order of ``values(_:)``.
    static let names = ["allocations", "relayed_bytes", "relayed_packets", "auth_failures", "challenges_dropped", "denied_peers",
                        "dropped", "refreshes", "quota_refusals", "over_bandwidth"]

    static func values(_ c: Allocations.Counters) -> [Int] {
        [c.allocated, c.relayedBytes, c.relayedPackets, c.authFailures, c.challengesDropped, c.deniedPeers, c.dropped, c.refreshes,
         c.quotaRefusals, c.overBandwidth]
    }

    let allocations: Gauge
    let totals: [Counter]
    let last = NIOLockedValueBox(Allocations.Counters())

    init(factory: any MetricsFactory) {
        allocations = Gauge(label: "liveswarm_turn_allocations", factory: factory)
        totals = Self.names.map { Counter(label: "liveswarm_turn_\($0)_total", factory: factory) }
    }

    /// Counters only grow, so each series is raised by what it grew since the last call.
    func record(_ now: Allocations.Counters, allocations count: Int) {
        allocations.record(count)
        let before = last.withLockedValue { last in
            defer { last = now }
            return last
        }
        for (counter, (new, old)) in zip(totals, zip(Self.values(now), Self.values(before))) where new > old {
            counter.increment(by: new - old)
        }
    }
}
