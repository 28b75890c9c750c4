import NIOCore
import StreamHub

/// Push delivery of a viewer's frames to a channel, from the channel's event loop: shared by RTMP players and
/// HTTP-FLV viewers, which differ only in how a frame is framed on the wire.
enum ViewerPump {
    /// Bounds what a slow viewer's connection holds outside its queue (kernel buffer, pending writes), then asks
    /// the viewer to call `deliver` on the channel's event loop whenever it has frames.
    static func start(_ viewer: Viewer, context: ChannelHandlerContext, sendBuffer: Int, watermark: ChannelOptions.Types.WriteBufferWaterMark,
                      deliver: @escaping () -> Void) {
        _ = try? context.channel.syncOptions?.setOption(.socketOption(.so_sndbuf), value: SocketOptionValue(sendBuffer))
        _ = try? context.channel.syncOptions?.setOption(.writeBufferWaterMark, value: watermark)
        let loop = context.eventLoop
        let drain = NIOLoopBound(deliver, eventLoop: loop)
        viewer.onReadable { loop.execute { drain.value() } }
    }

    /// Writes what the viewer has queued while the channel is writable, each frame as `encode` frames it, and
    /// flushes. The rest stays in the viewer's queue, where frame skipping applies, until the channel is writable
    /// again. Returns the bytes written, or nil once the viewer has ended (closed and drained).
    static func drain(_ viewer: Viewer, context: ChannelHandlerContext, encode: (MediaFrame) -> (NIOAny, Int)) -> Int? {
        var wrote = 0
        defer { if wrote > 0 { context.flush() } }
        while context.channel.isWritable {
            guard let batch = viewer.take() else { return nil }
            if batch.isEmpty { break }
            for f in batch {
                let (data, size) = encode(f)
                wrote += size
                context.write(data, promise: nil)
            }
        }
        return wrote
    }
}
