import FuzzSupport
import RTP

/// Compound RTCP (RFC 3550 6, RFC 4585 feedback, transport-cc): what parses is written and parsed back equal.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let packets = try? RTCPPacket.parseCompound(bytes) else { return 0 }
    let written = RTCPPacket.writeCompound(packets)
    let again = reparsed("written RTCP") { try RTCPPacket.parseCompound(written) }
    // A NACK is a set of sequence numbers: written, it is packed (sorted from the first, duplicates merged).
    func normalized(_ p: [RTCPPacket]) -> [RTCPPacket] {
        p.map { if case .nack(var n) = $0 { n.lost = Array(Set(n.lost)).sorted(); return .nack(n) } else { return $0 } }
    }
    check(normalized(again) == normalized(packets), "\(packets) -> \(again)")
    return 0
}
