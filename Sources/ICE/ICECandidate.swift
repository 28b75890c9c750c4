/// A host candidate of the media port, as written in SDP (RFC 8839 5.1, RFC 6544 4.5 for TCP).
public struct ICECandidate: Sendable, Equatable, CustomStringConvertible {
    public var foundation: String
    public var component = 1
    public var transport: ICETransport
    public var priority: UInt32
    public var host: String
    public var port: Int

    public init(foundation: String, transport: ICETransport, priority: UInt32, host: String, port: Int) {
        (self.foundation, self.transport, self.priority, self.host, self.port) = (foundation, transport, priority, host, port)
    }

    /// RFC 8445 5.1.2.1: (2^24) type preference + (2^8) local preference + (256 - component). Host candidates
    /// (type preference 126) over UDP; over TCP a lower type preference so that peers prefer UDP when both
    /// work (RFC 6544 4.2), each address a step lower than the previous one.
    public static func priority(_ transport: ICETransport, index: Int) -> UInt32 {
        let typePreference: UInt32 = transport == .udp ? 126 : 90
        let localPreference = UInt32(max(0, 65535 - index))
        return typePreference << 24 | localPreference << 8 | 255
    }

    /// The value of `a=candidate:` (without the prefix).
    public var description: String {
        var s = "\(foundation) \(component) \(transport == .udp ? "udp" : "tcp") \(priority) \(host) \(port) typ host"
        if transport == .tcp { s += " tcptype passive" }
        return s
    }
}
