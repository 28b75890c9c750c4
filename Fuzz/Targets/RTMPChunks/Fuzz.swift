import FuzzSupport
import NIOCore
import RTMP

/// The RTMP chunk stream (what follows the handshake on a connection), fed in pieces whose sizes come from the
/// input's first byte, as a socket delivers it: messages come out until the decoder refuses the stream. Small limits
/// keep the decoder's own bounds in play.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 1 else { return 0 }
    let piece = Int(data[0]) + 1
    var decoder = ChunkDecoder(maxMessageSize: 64 << 10, maxBufferedBytes: 256 << 10, maxChunkStreams: 8)
    var buffer = ByteBuffer()
    var offset = 1
    while offset < size {
        let n = min(piece, size - offset)
        buffer.writeBytes(UnsafeBufferPointer(start: data + offset, count: n))
        offset += n
        do {
            while let m = try decoder.next(from: &buffer) { check(m.payload.readableBytes <= 64 << 10, "a message over the limit") }
        } catch {
            return 0
        }
    }
    return 0
}
