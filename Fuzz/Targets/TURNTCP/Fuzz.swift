import FuzzSupport
@testable import ICE
import NIOCore
import NIOEmbedded
import STUN

/// The STUN/TURN server's TCP framer (RFC 8489 over TCP, RFC 8656 12.5 ChannelData padded to 4 bytes), driven as
/// a connection drives it: bytes arrive in pieces of any size. The first input byte sets the scene: bit 7 off, TURN
/// is on and channel numbers with bit 0 equal to this byte's are bound; bits 0-5 (+1) the piece size. Frames must
/// be the stream's bytes cut at the lengths their headers give, the same however the stream is cut; a stream that
/// is neither STUN nor a bound channel is an error that ends the connection, never a crash or a frame of garbage.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let scene = data[0]
    let stream = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let turn = scene & 0x80 == 0
    let piece = Int(scene & 0x3F) + 1
    let whole = frames(stream, piece: stream.count + 1, turn: turn, parity: scene & 1)
    let cut = frames(stream, piece: piece, turn: turn, parity: scene & 1)
    check(whole.frames == cut.frames && whole.failed == cut.failed,
          "\(whole.frames.count) frames whole, \(cut.frames.count) in pieces of \(piece); failed \(whole.failed) / \(cut.failed)")
    var at = 0
    for f in whole.frames {
        check(Array(stream[at..<(at + f.count)]) == f, "a frame that is not the stream's next bytes")
        at += f.count
        let header = Array(f.prefix(4))
        if turn && ChannelData.isChannelData(firstByte: f[0]) {
            check(f.count == ChannelData.framedLength(header: header) && (UInt16(f[0]) << 8 | UInt16(f[1])) & 1 == UInt16(scene & 1),
                  "ChannelData frame of \(f.count) bytes, header \(header)")
        } else {
            check(f[0] & 0xC0 == 0 && f.count == Message.messageLength(header: header) && f.count <= Message.defaultMaximumSize,
                  "STUN frame of \(f.count) bytes, header \(header)")
        }
    }
    // After an error nothing more is framed; without one, what is left is less than one frame.
    if !whole.failed { check(stream.count - at < Message.defaultMaximumSize + 4, "\(stream.count - at) bytes left unframed") }
    return 0
}

func frames(_ stream: [UInt8], piece: Int, turn: Bool, parity: UInt8) -> (frames: [[UInt8]], failed: Bool) {
    let framer = STUNServer.TCPFramer(isBound: turn ? { @Sendable n in UInt8(n & 1) == parity } : nil)
    let channel = EmbeddedChannel(handler: ByteToMessageHandler(framer))
    var out: [[UInt8]] = []
    var failed = false
    var i = 0
    while i < stream.count && !failed {
        var b = channel.allocator.buffer(capacity: piece)
        b.writeBytes(stream[i..<min(i + piece, stream.count)])
        i += piece
        do { try channel.writeInbound(b) } catch { failed = true }
        while let f = try? channel.readInbound(as: [UInt8].self) { out.append(f) }
    }
    _ = try? channel.finish(acceptAlreadyClosed: true)
    return (out, failed)
}
