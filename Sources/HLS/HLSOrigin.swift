import Logging
import NIOCore
import StreamHub
import Synchronization

/// Keeps an HLS (MPEG-TS) rendition of every live stream: one ``Segmenter`` per stream, fed by an internal hub
/// consumer from the moment a publisher starts, and the segments and playlist that HTTP serves.
///
/// Segmenting runs on one event loop, not on the publisher's thread. A republish (a new publishing session)
/// ends the segment in progress and marks the next one as a discontinuity. When the hub ends the stream (the
/// publisher did not come back within the grace period) the playlist is ended (EXT-X-ENDLIST).
public final class HLSOrigin: Sendable {
    let hub: StreamHub
    let configuration: SegmenterConfiguration
    let eventLoop: any EventLoop
    let logger: Logger

    struct Rendition {
        var segmenter: Segmenter
        var viewer: Viewer?
        var session = 0
        var ended = false
        var reported: Set<String> = []
    }

    let renditions = Mutex<[StreamKey: Rendition]>([:])

    public init(hub: StreamHub, configuration: SegmenterConfiguration = .init(), eventLoop: any EventLoop, logger: Logger) {
        self.hub = hub
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.logger = logger
        hub.onPublish { [weak self] key in self?.eventLoop.execute { self?.attach(key) } }
    }

    /// Starts consuming a stream unless a consumer is already attached (a republish within the grace period).
    func attach(_ key: StreamKey) {
        let needed = renditions.withLock { r -> Bool in
            if let existing = r[key], existing.viewer != nil, !existing.ended { return false }
            r[key] = Rendition(segmenter: Segmenter(name: key.stream, configuration: configuration))
            return true
        }
        guard needed, let viewer = try? hub.subscribe(key, protocolName: "hls", peer: "segmenter", isInternal: true) else { return }
        renditions.withLock { $0[key]?.viewer = viewer }
        viewer.onReadable { [weak self] in self?.eventLoop.execute { self?.drain(key) } }
    }

    func drain(_ key: StreamKey) {
        var newlyUnsupported: Set<String> = []
        var finished = false
        renditions.withLock { r in
            guard var rendition = r[key], let viewer = rendition.viewer else { return }
            while true {
                guard let batch = viewer.take(maxBytes: 1 << 20) else {
                    rendition.segmenter.endSession()
                    rendition.ended = true
                    rendition.viewer = nil
                    finished = true
                    break
                }
                if batch.isEmpty { break }
                for frame in batch {
                    if frame.session != rendition.session {
                        if rendition.session != 0 { rendition.segmenter.endSession() }
                        rendition.session = frame.session
                    }
                    rendition.segmenter.add(frame)
                }
            }
            newlyUnsupported = rendition.segmenter.unsupported.subtracting(rendition.reported)
            rendition.reported.formUnion(newlyUnsupported)
            r[key] = rendition
        }
        for codec in newlyUnsupported.sorted() {
            logger.warning("HLS cannot carry this codec; it is left out of the HLS rendition", metadata: [
                "stream": "\(key)", "codec": "\(codec)"])
        }
        if finished {
            logger.info("HLS playlist ended", metadata: ["stream": "\(key)"])
            // Players that were watching read the ended playlist and its last segments; then they go.
            let linger = TimeAmount.seconds(Int64(configuration.targetDuration * configuration.retainedSegments))
            eventLoop.scheduleTask(in: linger) { [weak self] in
                self?.renditions.withLock { r in
                    if r[key]?.ended == true { r[key] = nil }
                }
            }
        }
    }

    /// The live playlist, nil if the stream has no segment yet.
    public func playlist(_ key: StreamKey) -> MediaPlaylist? {
        renditions.withLock { r in
            guard let rendition = r[key], !rendition.segmenter.segments.isEmpty else { return nil }
            var p = rendition.segmenter.playlist
            p.ended = rendition.ended
            return p
        }
    }

    public func segment(_ key: StreamKey, sequence: Int) -> Segment? {
        renditions.withLock { $0[key]?.segmenter.segment(sequence) }
    }
}
