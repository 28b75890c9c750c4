import FuzzSupport
import STUN

/// STUN and TURN messages (RFC 8489, 8656) and ChannelData: parse, and for a message that parses, encode it again
/// and parse that: the type, transaction id and attributes come back (integrity and fingerprint are recomputed, so
/// they are left out of the comparison), and every TURN attribute accessor either reads or throws.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    _ = ChannelData.parse(bytes)
    guard let m = try? Message(parsing: bytes) else { return 0 }
    _ = try? m.xorPeerAddresses()
    _ = try? m.xorRelayedAddress()
    _ = try? m.lifetime()
    _ = try? m.channelNumber()
    _ = try? m.requestedTransport()
    _ = try? m.evenPort()
    _ = try? m.reservationToken()
    _ = try? m.requestedAddressFamily()
    let kept = m.attributes.filter { ![.messageIntegrity, .messageIntegritySHA256, .fingerprint].contains($0.type) }
    var plain = m
    plain.attributes = kept
    let again = reparsed("an encoded message") { try Message(parsing: plain.encode()) }
    check(again.type == m.type && again.transactionID == m.transactionID, "type or transaction id changed")
    check(again.attributes == kept, "attributes changed: \(kept) -> \(again.attributes)")
    return 0
}
