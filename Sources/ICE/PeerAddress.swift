import NIOCore
import STUN

/// How a packet reached the media port.
public enum ICETransport: UInt8, Sendable, Hashable, CustomStringConvertible {
    case udp
    /// ICE-TCP, passive side (RFC 6544): one connection per remote candidate.
    case tcp

    public var description: String { self == .udp ? "udp" : "tcp" }
}

/// A remote transport address as a plain value: IPv4 is kept as an IPv4-mapped IPv6 address, so both
/// families hash the same way. Built from a NIO `SocketAddress` without allocating, which is what lets the
/// media port look up (and drop) packets from unknown sources cheaply.
public struct PeerAddress: Hashable, Sendable, CustomStringConvertible {
    public var transport: ICETransport
    /// The 16 address bytes, big-endian, split in two halves.
    public var high: UInt64
    public var low: UInt64
    public var port: UInt16

    public init(transport: ICETransport, high: UInt64, low: UInt64, port: UInt16) {
        (self.transport, self.high, self.low, self.port) = (transport, high, low, port)
    }

    /// An IPv4 address, a.b.c.d as a 32-bit big-endian value.
    public init(transport: ICETransport, ipv4: UInt32, port: UInt16) {
        self.init(transport: transport, high: 0, low: 0x0000_FFFF_0000_0000 | UInt64(ipv4), port: port)
    }

    public init?(_ socket: SocketAddress, transport: ICETransport) {
        switch socket {
        case .v4(let a):
            self.init(transport: transport, ipv4: UInt32(bigEndian: a.address.sin_addr.s_addr),
                      port: UInt16(bigEndian: a.address.sin_port))
        case .v6(let a):
            let (high, low) = withUnsafeBytes(of: a.address.sin6_addr) { raw in
                (raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self).bigEndian,
                 raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self).bigEndian)
            }
            self.init(transport: transport, high: high, low: low, port: UInt16(bigEndian: a.address.sin6_port))
        default:
            return nil
        }
    }

    public var isIPv4: Bool { high == 0 && low >> 32 == 0x0000_FFFF }

    /// The address as STUN writes it (XOR-MAPPED-ADDRESS): 4 bytes for IPv4 (mapped ones too), else 16.
    public var stunAddress: Address {
        if isIPv4 {
            let v = UInt32(truncatingIfNeeded: low)
            return Address(ip: [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)], port: port)
        }
        var ip: [UInt8] = []
        for half in [high, low] { for k in 0..<8 { ip.append(UInt8(truncatingIfNeeded: half >> (56 - 8 * k))) } }
        return Address(ip: ip, port: port)
    }

    public var description: String { "\(transport) \(stunAddress)" }
}
