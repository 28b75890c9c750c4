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
        write: ([ByteBuffer]) async throws -> Void
    ) async {
        defer { viewer.close() }
        var header = ByteBufferAllocator().buffer(capacity: 13)
        FLVHeader(hasAudio: hasAudio, hasVideo: hasVideo).write(to: &header)
        do {
            try await write([header])
            metrics.bytesSent.increment(by: header.readableBytes)
            while let batch = await viewer.next() {
                // Each frame's tag is encoded once and shared by every viewer: no copy per viewer.
                let tags = batch.map(\.flvTag)
                try await write(tags)
                metrics.bytesSent.increment(by: tags.reduce(0) { $0 + $1.readableBytes })
            }
            logger.info("HTTP-FLV viewer ended: stream over", metadata: ["viewer": "\(viewer.id)"])
        } catch {
            logger.info("HTTP-FLV viewer ended: \(error)", metadata: ["viewer": "\(viewer.id)"])
        }
    }
}
