import FuzzSupport
@testable import ICE
import NIOCore
import NIOEmbedded

/// The media port's ICE-TCP framer (RFC 4571: a 16-bit length before each packet, RFC 6544 passive side) and the
/// RFC 7983 sorting of what it frames. The first input byte (+1) is the size of the pieces the stream arrives in;
/// frames must be the stream cut at its length fields, the same however it is cut, and every frame sorts to one
/// kind or none by its first byte.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let piece = Int(data[0]) + 1
    let stream = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let whole = frames(stream, piece: stream.count + 1)
    let cut = frames(stream, piece: piece)
    check(whole == cut, "\(whole.count) frames whole, \(cut.count) in pieces of \(piece)")
    var at = 0
    for f in whole {
        check(stream.count >= at + 2 + f.count && Int(stream[at]) << 8 | Int(stream[at + 1]) == f.count
              && Array(stream[(at + 2)..<(at + 2 + f.count)]) == f, "frame \(f.count) bytes at \(at)")
        at += 2 + f.count
        if let first = f.first, let kind = PacketKind.classify(first) {
            switch kind {
            case .stun: check(first <= 3)
            case .dtls: check((20...63).contains(first))
            case .rtp: check((128...191).contains(first))
            }
        }
    }
    check(stream.count - at < 2 || stream.count - at < 2 + (Int(stream[at]) << 8 | Int(stream[at + 1])), "a whole frame left unframed")
    return 0
}

func frames(_ stream: [UInt8], piece: Int) -> [[UInt8]] {
    let channel = EmbeddedChannel(handler: ByteToMessageHandler(MediaPort.RFC4571Framer()))
    var out: [[UInt8]] = []
    var i = 0
    while i < stream.count {
        var b = channel.allocator.buffer(capacity: piece)
        b.writeBytes(stream[i..<min(i + piece, stream.count)])
        i += piece
        do { try channel.writeInbound(b) } catch { fatalError("the RFC 4571 framer threw: \(error)") }
        while let f = try? channel.readInbound(as: ByteBuffer.self) { out.append(Array(f.readableBytesView)) }
    }
    _ = try? channel.finish(acceptAlreadyClosed: true)
    return out
}
