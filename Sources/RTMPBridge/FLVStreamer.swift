import FLV
import Logging
import NIOCore
import StreamHub

/// Writes a viewer's frames as an FLV byte stream (HTTP-FLV): the FLV header, then one tag per frame.
///
/// `write` must return only once the bytes were handed to the socket (Hummingbird's response writer
/// does), so a slow client makes this loop wait and its viewer queue, not memory, absorbs the lag.
public enum FLVStreamer {
    public static func stream(
        _ viewer: Viewer, hasAudio: Bool, hasVideo: Bool, metrics: ProtocolMetrics, logger: Logger,
        write: (ByteBuffer) async throws -> Void
    ) async {
        defer { viewer.close() }
        var header = ByteBufferAllocator().buffer(capacity: 13)
        FLVHeader(hasAudio: hasAudio, hasVideo: hasVideo).write(to: &header)
        do {
            try await write(header)
            metrics.bytesSent.increment(by: header.readableBytes)
            while let batch = await viewer.next() {
                var out = ByteBufferAllocator().buffer(capacity: batch.reduce(0) { $0 + $1.size + FLVTag.headerSize + 4 })
                for f in batch {
                    FLVTag.write(type: f.tagType, timestamp: f.timestamp, body: f.payload, to: &out)
                }
                let n = out.readableBytes
                try await write(out)
                metrics.bytesSent.increment(by: n)
            }
            logger.info("HTTP-FLV viewer ended: stream over", metadata: ["viewer": "\(viewer.id)"])
        } catch {
            logger.info("HTTP-FLV viewer ended: \(error)", metadata: ["viewer": "\(viewer.id)"])
        }
    }
}
