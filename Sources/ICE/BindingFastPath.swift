import NIOCore
import STUN

extension BindingResponder {
    /// The common case without building a ``Message``: a well-formed Binding request whose attributes are all
    /// known (or comprehension-optional) and whose FINGERPRINT, if any, checks. The response is written straight
    /// into one buffer, byte for byte what ``respond(to:from:)`` writes. Anything else returns nil and goes the
    /// general way.
    public func fastBindingResponse(to request: ByteBuffer, from source: SocketAddress,
                                    allocator: ByteBufferAllocator) -> ByteBuffer? {
        let r = request.readerIndex
        let total = request.readableBytes
        guard total >= 20, total <= Message.defaultMaximumSize,
            request.getInteger(at: r, as: UInt16.self) == 0x0001,
            let length = request.getInteger(at: r + 2, as: UInt16.self), Int(length) + 20 == total, length % 4 == 0,
            request.getInteger(at: r + 4, as: UInt32.self) == Message.magicCookie
        else { return nil }
        // Walk the attributes: all must fit, none may be unknown and comprehension-required, FINGERPRINT last.
        var i = r + 20
        var fingerprintAt: Int?
        var integrity = false, integritySHA256 = false
        while i < r + total {
            guard fingerprintAt == nil, let type = request.getInteger(at: i, as: UInt16.self),
                let valueLength = request.getInteger(at: i + 2, as: UInt16.self) else { return nil }
            let next = i + 4 + (Int(valueLength) + 3) & ~3
            guard next <= r + total else { return nil }
            let attribute = AttributeType(rawValue: type)
            // What the parser refuses, the general path drops: lengths it does not take, a second integrity.
            guard Message.takesValueLength(attribute, Int(valueLength)) else { return nil }
            if attribute == .fingerprint {
                fingerprintAt = i
            } else if attribute == .messageIntegrity {
                guard !integrity else { return nil }
                integrity = true
            } else if attribute == .messageIntegritySHA256 {
                guard !integritySHA256 else { return nil }
                integritySHA256 = true
            } else if attribute.isComprehensionRequired && !attribute.isKnown {
                return nil
            }
            i = next
        }
        if let at = fingerprintAt {
            let crc = request.withUnsafeReadableBytes { raw -> UInt32 in
                var header = Array(raw[0..<4])
                let covered = at - r + 8 - 20
                header[2] = UInt8(covered >> 8)
                header[3] = UInt8(covered & 0xFF)
                return CRC32.continuing(CRC32.checksum(header), raw[4..<(at - r)])
            }
            guard crc ^ Message.fingerprintXOR == request.getInteger(at: at + 4, as: UInt32.self) else { return nil }
        }
        let (family, addressBytes): (UInt8, Int)
        switch source {
        case .v4: (family, addressBytes) = (1, 4)
        case .v6: (family, addressBytes) = (2, 16)
        default: return nil
        }
        if case .v6(let a) = source {
            let b = withUnsafeBytes(of: a.address.sin6_addr) { Array($0) }
            // IPv4-mapped: answered as IPv4 by the general path; keep the two identical.
            if b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xFF && b[11] == 0xFF { return nil }
        }
        let software = softwareAttribute
        let bodyLength = 4 + 4 + addressBytes + software.count + (fingerprintAt != nil ? 8 : 0)
        var out = allocator.buffer(capacity: 20 + bodyLength)
        out.writeInteger(UInt16(0x0101))
        out.writeInteger(UInt16(bodyLength))
        out.writeInteger(Message.magicCookie)
        out.writeImmutableBuffer(request.getSlice(at: r + 8, length: 12)!)
        out.writeInteger(AttributeType.xorMappedAddress.rawValue)
        out.writeInteger(UInt16(4 + addressBytes))
        out.writeInteger(UInt8(0))
        out.writeInteger(family)
        out.writeInteger(UInt16(source.port ?? 0) ^ 0x2112)
        switch source {
        case .v4(let a):
            out.writeInteger(UInt32(bigEndian: a.address.sin_addr.s_addr) ^ Message.magicCookie)
        case .v6(let a):
            withUnsafeBytes(of: a.address.sin6_addr) { ip in
                for k in 0..<16 {
                    let mask = k < 4 ? UInt8(truncatingIfNeeded: Message.magicCookie >> (24 - 8 * k)) : request.getInteger(at: r + 4 + k, as: UInt8.self)!
                    out.writeInteger(ip[k] ^ mask)
                }
            }
        default:
            return nil
        }
        out.writeBytes(software)
        if fingerprintAt != nil {
            let crc = out.withUnsafeReadableBytes { CRC32.checksum($0) } ^ Message.fingerprintXOR
            out.writeInteger(AttributeType.fingerprint.rawValue)
            out.writeInteger(UInt16(4))
            out.writeInteger(crc)
        }
        return out
    }
}
