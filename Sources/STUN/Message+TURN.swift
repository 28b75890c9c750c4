/// The TURN attributes (RFC 8656 section 18, RFC 6156 for address families) as values.
extension Message {
    /// Every XOR-PEER-ADDRESS, in order (CreatePermission may carry several, RFC 8656 9.1).
    public func xorPeerAddresses() throws(STUNError) -> [Address] {
        var out: [Address] = []
        for a in attributes where a.type == .xorPeerAddress {
            out.append(try Address(value: a.value[...], xor: true, transactionID: transactionID, type: a.type.rawValue))
        }
        return out
    }

    public func xorRelayedAddress() throws(STUNError) -> Address? {
        guard let v = attribute(.xorRelayedAddress) else { return nil }
        return try Address(value: v[...], xor: true, transactionID: transactionID, type: AttributeType.xorRelayedAddress.rawValue)
    }

    /// LIFETIME in seconds (RFC 8656 18.4).
    public func lifetime() throws(STUNError) -> UInt32? {
        guard let v = attribute(.lifetime) else { return nil }
        guard v.count == 4 else { throw .malformedAttribute(type: AttributeType.lifetime.rawValue) }
        return UInt32(truncatingIfNeeded: Self.integer(v)!)
    }

    /// CHANNEL-NUMBER (RFC 8656 18.1): the number in the first two bytes, the rest RFFU.
    public func channelNumber() throws(STUNError) -> UInt16? {
        guard let v = attribute(.channelNumber) else { return nil }
        guard v.count == 4 else { throw .malformedAttribute(type: AttributeType.channelNumber.rawValue) }
        return UInt16(v[0]) << 8 | UInt16(v[1])
    }

    /// REQUESTED-TRANSPORT's protocol number (RFC 8656 18.7): 17 is UDP.
    public func requestedTransport() throws(STUNError) -> UInt8? {
        guard let v = attribute(.requestedTransport) else { return nil }
        guard v.count == 4 else { throw .malformedAttribute(type: AttributeType.requestedTransport.rawValue) }
        return v[0]
    }

    /// EVEN-PORT (RFC 8656 18.6): nil when absent, else whether its R bit asks to reserve the next port too.
    public func evenPort() throws(STUNError) -> Bool? {
        guard let v = attribute(.evenPort) else { return nil }
        guard !v.isEmpty else { throw .malformedAttribute(type: AttributeType.evenPort.rawValue) }
        return v[0] & 0x80 != 0
    }

    /// RESERVATION-TOKEN (RFC 8656 18.9): 8 bytes.
    public func reservationToken() throws(STUNError) -> [UInt8]? {
        guard let v = attribute(.reservationToken) else { return nil }
        guard v.count == 8 else { throw .malformedAttribute(type: AttributeType.reservationToken.rawValue) }
        return v
    }

    /// REQUESTED-ADDRESS-FAMILY (RFC 8656 18.10): 4 or 6; nil when absent. Another family byte throws.
    public func requestedAddressFamily() throws(STUNError) -> Int? {
        guard let v = attribute(.requestedAddressFamily) else { return nil }
        guard v.count == 4 else { throw .malformedAttribute(type: AttributeType.requestedAddressFamily.rawValue) }
        switch v[0] {
        case 0x01: return 4
        case 0x02: return 6
        default: return 0
        }
    }

    public var dontFragment: Bool { attribute(.dontFragment) != nil }

    /// DATA (RFC 8656 18.5).
    public var data: [UInt8]? { attribute(.data) }
}

/// ChannelData (RFC 8656 section 12.4): a channel number, a length, and the application data; over TCP, and as
/// some clients do over UDP too (coturn's `-D`), padded to 4 bytes. Channel numbers are RFC 5766's 0x4000-0x7FFE:
/// RFC 8656 narrowed them to 0x4000-0x4FFF, but deployed clients (coturn 4.6.1's among them) still pick from the
/// old range, and on a TURN port nothing else starts with bytes 0x50-0x7F.
///
///      0                   1                   2                   3
///      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |         Channel Number        |            Length             |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     /                       Application Data                        /
public enum ChannelData {
    public static let channels: ClosedRange<UInt16> = 0x4000...0x7FFE

    /// Whether the first byte says ChannelData (RFC 7983 gives TURN channels 64-79; the rest of RFC 5766's range
    /// is accepted on the TURN port, see above).
    public static func isChannelData(firstByte: UInt8) -> Bool { (0x40...0x7F).contains(firstByte) }

    /// The channel and the data's range in `bytes`: the whole datagram must be the header, the data and at most
    /// 3 bytes of padding. Nil when it is not.
    public static func parse(_ bytes: [UInt8]) -> (channel: UInt16, data: Range<Int>)? {
        guard bytes.count >= 4 else { return nil }
        let channel = UInt16(bytes[0]) << 8 | UInt16(bytes[1])
        let length = Int(bytes[2]) << 8 | Int(bytes[3])
        guard channels.contains(channel), 4 + length <= bytes.count, bytes.count - 4 - length <= 3 else { return nil }
        return (channel, 4..<(4 + length))
    }

    /// The size of one ChannelData message from its header, padded to 4 (how a TCP stream is cut).
    public static func framedLength(header: [UInt8]) -> Int? {
        guard header.count >= 4 else { return nil }
        let length = Int(header[2]) << 8 | Int(header[3])
        return 4 + (length + 3) & ~3
    }

    /// Header and data, padded to 4 bytes when `pad` (required over TCP).
    public static func encode(channel: UInt16, _ data: ArraySlice<UInt8>, pad: Bool) -> [UInt8] {
        var out: [UInt8] = [UInt8(channel >> 8), UInt8(channel & 0xFF), UInt8(data.count >> 8 & 0xFF), UInt8(data.count & 0xFF)]
        out.reserveCapacity(4 + data.count + 3)
        out += data
        if pad { out += [UInt8](repeating: 0, count: (4 - data.count % 4) % 4) }
        return out
    }
}
