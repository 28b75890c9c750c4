import FuzzSupport
@testable import RTMP
import NIOCore

/// The server's side of the RTMP handshake on any C0+C1. The first input byte chooses what the harness makes of
/// the rest: bit 0 signs C1 with the client key (as Flash and ffmpeg do) at base 8 or, with bit 1, 772, so the digest
/// scheme is reached; the rest, padded to 1536 bytes, is C1. The response must be S0+S1+S2 of the right size; a
/// digest client must find S1 and S2 valid; a plain one must get C1 back as S2.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let mode = bytes.first else { return 0 }
    // The raw input as C0+C1 first: a wrong version or a short C1 must be refused, not crash.
    var raw = ByteBufferAllocator().buffer(capacity: size)
    raw.writeBytes(bytes.dropFirst())
    var rng = SystemRandomNumberGenerator()
    _ = try? Handshake.serverResponse(c0c1: raw, time: 1, using: &rng)
    _ = Handshake.scheme(ofC1: Array(bytes.dropFirst()))

    var c1 = Array(bytes.dropFirst().prefix(Handshake.packetSize))
    c1 += [UInt8](repeating: 0, count: Handshake.packetSize - c1.count)
    if mode & 1 != 0 {
        let base = mode & 2 != 0 ? 772 : 8
        let off = Handshake.digestOffset(c1, base: base)
        c1.replaceSubrange(off..<(off + 32), with: Handshake.digest(c1, offset: off, key: Handshake.clientKey))
    }
    var c0c1 = ByteBufferAllocator().buffer(capacity: 1 + c1.count)
    c0c1.writeInteger(Handshake.version)
    c0c1.writeBytes(c1)
    let response: ByteBuffer, scheme: Handshake.Scheme
    do { (response, scheme) = try Handshake.serverResponse(c0c1: c0c1, time: 1, using: &rng) } catch {
        fatalError("a version-3 C0 and a whole C1 refused: \(error)")
    }
    let out = Array(response.readableBytesView)
    check(out.count == 1 + 2 * Handshake.packetSize && out[0] == Handshake.version, "response of \(out.count) bytes")
    let s1 = Array(out[1...Handshake.packetSize]), s2 = Array(out[(1 + Handshake.packetSize)...])
    switch scheme {
    case .plain:
        check(s2 == c1, "a plain C1 is not echoed in S2")
    case .digest:
        check(mode & 1 != 0 || Handshake.scheme(ofC1: c1) == scheme)
        check(Handshake.verifyServerResponse(c1: c1, s1: s1, s2: s2), "a digest client would refuse S1/S2 (\(scheme))")
    }
    if mode & 1 != 0 { check(scheme != .plain, "a signed C1 taken as plain") }
    return 0
}
