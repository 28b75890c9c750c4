/// A transport address as STUN carries it (MAPPED-ADDRESS, XOR-MAPPED-ADDRESS; RFC 8489 14.1-14.2).
public struct Address: Hashable, Sendable, CustomStringConvertible {
    /// 4 bytes (IPv4) or 16 bytes (IPv6), network order.
    public var ip: [UInt8]
    public var port: UInt16

    public init(ip: [UInt8], port: UInt16) {
        self.ip = ip
        self.port = port
    }

    public var isIPv6: Bool { ip.count == 16 }

    public var description: String {
        if ip.count == 4 { return "\(ip.map(String.init).joined(separator: ".")):\(port)" }
        let groups = stride(from: 0, to: ip.count, by: 2).map { String(UInt16(ip[$0]) << 8 | UInt16(ip[$0 + 1]), radix: 16) }
        return "[\(groups.joined(separator: ":"))]:\(port)"
    }

    /// The attribute value: family, port and address, XORed with the magic cookie and transaction id when `xor`.
    func value(xor: Bool, transactionID: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0, isIPv6 ? 0x02 : 0x01]
        let mask = xor ? Message.magicCookieBytes + transactionID : [UInt8](repeating: 0, count: 16)
        let p = port ^ (xor ? 0x2112 : 0)
        out += [UInt8(p >> 8), UInt8(p & 0xFF)]
        for (i, b) in ip.enumerated() { out.append(b ^ mask[i]) }
        return out
    }

    init(value: ArraySlice<UInt8>, xor: Bool, transactionID: [UInt8], type: UInt16) throws(STUNError) {
        let v = Array(value)
        guard v.count >= 4 else { throw .malformedAttribute(type: type) }
        let length: Int
        switch v[1] {
        case 0x01: length = 4
        case 0x02: length = 16
        default: throw .malformedAttribute(type: type)
        }
        guard v.count == 4 + length else { throw .malformedAttribute(type: type) }
        let mask = xor ? Message.magicCookieBytes + transactionID : [UInt8](repeating: 0, count: 16)
        port = (UInt16(v[2]) << 8 | UInt16(v[3])) ^ (xor ? 0x2112 : 0)
        ip = (0..<length).map { v[4 + $0] ^ mask[$0] }
    }
}
