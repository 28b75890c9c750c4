import Metrics
import Locks

/// A metrics factory in front of Prometheus's whose counters can also be read back in the process: the dashboard's
/// byte rates are the very counters `/metrics` exports (`liveswarm_bytes_sent_total{protocol="rtmp"}` and the rest),
/// so the page and a Prometheus scrape cannot disagree. Every other kind of metric goes straight to the base factory.
final class ReadableMetricsFactory: MetricsFactory, Sendable {
    final class ReadableCounter: CounterHandler, Sendable {
        let base: any CounterHandler
        let total = Atomic<Int64>(0)

        init(base: any CounterHandler) { self.base = base }

        func increment(by amount: Int64) {
            total.add(amount, ordering: .relaxed)
            base.increment(by: amount)
        }

        func reset() {
            total.store(0, ordering: .relaxed)
            base.reset()
        }
    }

    let base: any MetricsFactory
    /// Keyed like Prometheus's own series (the label and its sorted dimensions): a counter made twice is one counter.
    let counters = Mutex<[String: ReadableCounter]>([:])

    init(base: any MetricsFactory) { self.base = base }

    static func key(_ label: String, _ dimensions: [(String, String)]) -> String {
        ([label] + dimensions.sorted { $0.0 < $1.0 }.map { "\($0.0)=\($0.1)" }).joined(separator: "\u{1}")
    }

    /// The counter's total since start; 0 for a counter nobody made yet.
    func total(_ label: String, _ dimensions: [(String, String)] = []) -> Int {
        let key = Self.key(label, dimensions)
        return Int(counters.withLock { $0[key] }?.total.load(ordering: .relaxed) ?? 0)
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        let key = Self.key(label, dimensions)
        return counters.withLock { table in
            if let existing = table[key] { return existing }
            let made = ReadableCounter(base: base.makeCounter(label: label, dimensions: dimensions))
            table[key] = made
            return made
        }
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        base.makeFloatingPointCounter(label: label, dimensions: dimensions)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        base.makeMeter(label: label, dimensions: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        base.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        base.makeTimer(label: label, dimensions: dimensions)
    }

    func destroyCounter(_ handler: any CounterHandler) {
        guard let readable = handler as? ReadableCounter else { return base.destroyCounter(handler) }
        counters.withLock { table in
            if let key = table.first(where: { $0.value === readable })?.key { table.removeValue(forKey: key) }
        }
        base.destroyCounter(readable.base)
    }

    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { base.destroyFloatingPointCounter(handler) }
    func destroyMeter(_ handler: any MeterHandler) { base.destroyMeter(handler) }
    func destroyRecorder(_ handler: any RecorderHandler) { base.destroyRecorder(handler) }
    func destroyTimer(_ handler: any TimerHandler) { base.destroyTimer(handler) }
}
