import Metrics

/// Connection and byte counters for one delivery or ingest protocol, labelled `protocol="..."`.
public struct ProtocolMetrics: Sendable {
    public let connectionsTotal: Counter
    public let connections: Meter
    public let bytesReceived: Counter
    public let bytesSent: Counter

    public init(protocolName: String, factory: any MetricsFactory) {
        let dims = [("protocol", protocolName)]
        connectionsTotal = Counter(label: "liveswarm_connections_total", dimensions: dims, factory: factory)
        connections = Meter(label: "liveswarm_connections", dimensions: dims, factory: factory)
        bytesReceived = Counter(label: "liveswarm_bytes_received_total", dimensions: dims, factory: factory)
        bytesSent = Counter(label: "liveswarm_bytes_sent_total", dimensions: dims, factory: factory)
    }
}
