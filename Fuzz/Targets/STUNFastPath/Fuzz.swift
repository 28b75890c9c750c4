import FuzzSupport
import ICE
import NIOCore
import STUN

/// The STUN server's Binding fast path against its general path: whatever the fast path answers must be byte for
/// byte what `respond(to:from:)` answers (its documented promise), from an IPv4 or an IPv6 source as the first
/// input byte says. A request the fast path passes on is the general path's alone.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let v6 = data[0] & 1 != 0
    let port = Int(data[0]) * 251 + 1
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let source = v6 ? try! SocketAddress(ipAddress: "2001:db8::\(data[0])", port: port) : try! SocketAddress(ipAddress: "192.0.2.\(data[0])", port: port)
    let responder = BindingResponder(software: data[0] & 2 != 0 ? "LiveSwarm" : "LiveSwarm test server 1")
    let general = responder.respond(to: bytes, from: PeerAddress(source, transport: .udp)!.stunAddress)
    var buffer = ByteBufferAllocator().buffer(capacity: bytes.count + 8)
    // Somewhere in a larger buffer, as a datagram may be.
    buffer.writeBytes([9, 9, 9])
    buffer.writeBytes(bytes)
    buffer.moveReaderIndex(forwardBy: 3)
    if let fast = responder.fastBindingResponse(to: buffer, from: source, allocator: ByteBufferAllocator()) {
        guard case .reply(let reply) = general else { fatalError("the fast path answered what the general path drops: \(general)") }
        check(Array(fast.readableBytesView) == reply, "fast and general replies differ:\n\(Array(fast.readableBytesView))\n\(reply)")
    }
    return 0
}
