import FuzzSupport
import RTP

/// RTP packets (RFC 3550 5.1, with RFC 8285 header extensions and padding): what parses is written (without its
/// padding, as `write` documents) and parsed back equal, and the forwarding path's in-place readers agree with the
/// parser.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let headerLength = RTPPacket.headerLength(bytes)
    _ = RTPPacket.isRTCP(bytes)
    guard let p = try? RTPPacket(parsing: bytes) else { return 0 }
    check(headerLength == p.payload.startIndex, "headerLength \(String(describing: headerLength)), parser \(p.payload.startIndex)")
    let fixed = RTPPacket.fixedFields(bytes)
    check(fixed.sequenceNumber == p.header.sequenceNumber && fixed.timestamp == p.header.timestamp && fixed.ssrc == p.header.ssrc)
    let written = p.write()
    let again = reparsed("a written packet") { try RTPPacket(parsing: written) }
    check(again.header == p.header && Array(again.payload) == Array(p.payload) && again.padding == 0, "\(p) -> \(again)")
    return 0
}
