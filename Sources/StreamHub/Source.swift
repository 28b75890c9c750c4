import Logging
import NIOCore
import Locks

/// One live stream: its publisher, its codec configuration, its GOP cache and its viewers.
///
/// All state sits behind one lock taken for short, non-blocking sections. The publisher's thread pushes
/// each frame into every viewer's bounded queue and returns; nothing a viewer does can make it wait.
public final class Source: Sendable {
    public let key: StreamKey
    let configuration: HubConfiguration
    let clock: StreamHub.Clock
    let logger: Logger
    let nextID: @Sendable () -> UInt64

    struct State {
        var publisher: PublisherInfo?
        var unpublishedAt: UInt64?
        var createdAt: UInt64
        var publishedAt: UInt64 = 0
        var sessions = 0
        var metadata: MediaFrame?
        var videoConfig: MediaFrame?
        var audioConfig: MediaFrame?
        var gop: GOPCache
        var viewers: [UInt64: Viewer] = [:]
        var timeline = TimestampCorrector()
        var info = StreamInfo()
        var hasVideo = false
        var hasAudio = false
        var bytesIn = 0
        var framesIn = 0
        var rate = RateMeter()
        var lastTimestamp: UInt32 = 0
        /// The id of the newest viewer that is not internal (ids only grow).
        var newestViewer: UInt64 = 0
    }

    let state: Mutex<State>

    init(key: StreamKey, configuration: HubConfiguration, clock: @escaping StreamHub.Clock, logger: Logger,
         nextID: @escaping @Sendable () -> UInt64) {
        self.key = key
        self.configuration = configuration
        self.clock = clock
        self.logger = logger
        self.nextID = nextID
        self.state = Mutex(State(createdAt: clock(), gop: GOPCache(maxBytes: configuration.gopCacheMaxBytes)))
    }

    /// Takes the stream for a publisher, or throws if another one holds it.
    func attach(_ publisher: PublisherInfo) throws(HubError) {
        try state.withLock { s throws(HubError) in
            guard s.publisher == nil else { throw .alreadyPublishing(key) }
            s.publisher = publisher
            s.unpublishedAt = nil
            s.publishedAt = clock()
            s.sessions += 1
            // The new session brings its own codec configuration; the old GOP cannot be decoded with it.
            s.metadata = nil
            s.videoConfig = nil
            s.audioConfig = nil
            s.gop.clear()
            s.info = StreamInfo()
            s.hasVideo = false
            s.hasAudio = false
            s.timeline.beginSession()
        }
    }

    /// Releases the stream if `publisherID` still holds it. Returns whether any viewer remains.
    func detach(publisherID: UInt64) -> Bool {
        state.withLock { s in
            guard s.publisher?.id == publisherID else { return !s.viewers.isEmpty }
            s.publisher = nil
            s.unpublishedAt = clock()
            s.gop.clear()
            return !s.viewers.isEmpty
        }
    }

    /// Delivers one publisher message. Frames from a publisher that no longer holds the stream are ignored.
    func deliver(kind: MediaFrame.Kind, timestamp: UInt32, payload: ByteBuffer, publisherID: UInt64) {
        let now = clock()
        state.withLock { s in
            guard s.publisher?.id == publisherID else { return }
            let ts = s.timeline.correct(timestamp, nowMs: Int64(now / 1_000_000))
            var frame = MediaFrame(kind: kind, timestamp: ts, payload: payload, receivedAt: now)
            frame.session = s.sessions
            s.bytesIn += frame.size
            s.framesIn += 1
            s.rate.add(bytes: frame.size, now: now)
            s.lastTimestamp = ts
            switch kind {
            case .video:
                s.hasVideo = true
                if frame.isSequenceHeader {
                    s.videoConfig = frame
                    s.info.update(videoConfig: frame)
                    logger.info("video configuration", metadata: [
                        "stream": "\(key)", "codec": "\(s.info.videoCodec ?? "unknown")",
                        "resolution": "\(s.info.width.map(String.init) ?? "?")x\(s.info.height.map(String.init) ?? "?")",
                        "delivery": "passed through unchanged to RTMP and HTTP-FLV viewers",
                    ])
                }
            case .audio:
                s.hasAudio = true
                if frame.isSequenceHeader {
                    s.audioConfig = frame
                    s.info.update(audioConfig: frame)
                    logger.info("audio configuration", metadata: [
                        "stream": "\(key)", "codec": "\(s.info.audioCodec ?? "unknown")",
                        "sampleRate": "\(s.info.sampleRate.map(String.init) ?? "?")",
                        "channels": "\(s.info.channels.map(String.init) ?? "?")",
                    ])
                } else if s.info.audioCodec == nil {
                    // Codecs without a sequence header (MP3, Speex...) are named by their first frame.
                    s.info.update(audioFormat: frame)
                }
            case .metadata:
                s.metadata = frame
                s.info.update(metadata: frame)
            }
            s.gop.add(frame)
            for viewer in s.viewers.values { viewer.push(frame, now: now, hasVideo: s.hasVideo) }
        }
    }

    /// Adds a viewer and queues what it needs to start at once: metadata, sequence headers, cached GOP.
    func subscribe(protocolName: String, peer: String, isInternal: Bool) -> Viewer {
        let now = clock()
        // An internal consumer (the HLS segmenter) must see every frame: its bound is only a safety net.
        let queue = isInternal
            ? ViewerQueue(maxBytes: configuration.gopCacheMaxBytes * 2, maxWait: 30_000_000_000)
            : ViewerQueue(maxBytes: configuration.viewerMaxQueueBytes, maxWait: configuration.viewerMaxWait.nanoseconds)
        let viewer = Viewer(
            id: nextID(), key: key, protocolName: protocolName, peer: peer, joinedAt: now, isInternal: isInternal,
            queue: queue,
            detach: { [weak self] v in self?.remove(v) })
        state.withLock { s in
            for f in [s.metadata, s.videoConfig, s.audioConfig].compactMap({ $0 }) + s.gop.frames {
                viewer.push(f, now: now, hasVideo: s.hasVideo)
            }
            s.viewers[viewer.id] = viewer
            if !isInternal { s.newestViewer = viewer.id }
        }
        return viewer
    }

    /// The id of the newest viewer that is not internal, 0 before any: a publisher that makes keyframes only on
    /// request (a browser) sees from it that someone new is waiting for one.
    public var newestViewerID: UInt64 { state.withLock { $0.newestViewer } }

    func remove(_ viewer: Viewer) {
        _ = state.withLock { $0.viewers.removeValue(forKey: viewer.id) }
    }

    /// True once the publisher has been gone longer than the grace period; its viewers are then finished.
    func expireIfAbandoned(now: UInt64) -> Bool {
        let finished: [Viewer]? = state.withLock { s in
            guard s.publisher == nil, let gone = s.unpublishedAt,
                  s.viewers.isEmpty || now &- gone >= configuration.republishGrace.nanoseconds else { return nil }
            defer { s.viewers.removeAll() }
            return Array(s.viewers.values)
        }
        guard let finished else { return false }
        for v in finished { v.finish() }
        return true
    }

    public var isPublished: Bool { state.withLock { $0.publisher != nil } }

    /// The (corrected) timestamp of the newest frame from the publisher, in ms: where the live edge is.
    public var lastTimestamp: UInt32 { state.withLock { $0.lastTimestamp } }

    /// The viewers of the stream (people), without internal consumers such as the HLS segmenter.
    public var viewers: [Viewer] { state.withLock { $0.viewers.values.filter { !$0.isInternal } } }

    public func snapshot() -> StreamSnapshot {
        let now = clock()
        return state.withLock { s in
            var perProtocol: [String: Int] = [:]
            for v in s.viewers.values where !v.isInternal { perProtocol[v.protocolName, default: 0] += 1 }
            return StreamSnapshot(
                app: key.app, stream: key.stream, published: s.publisher != nil,
                publisherProtocol: s.publisher?.protocolName, publisherPeer: s.publisher?.peer,
                info: s.info, hasVideo: s.hasVideo, hasAudio: s.hasAudio,
                bitrate: s.rate.bitsPerSecond(now: now), bytesIn: s.bytesIn, framesIn: s.framesIn,
                uptimeSeconds: s.publisher != nil ? Double(now &- s.publishedAt) / 1e9 : 0,
                sessions: s.sessions, gopCacheBytes: s.gop.bytes, gopCacheFrames: s.gop.frames.count,
                viewers: perProtocol, viewerCount: perProtocol.values.reduce(0, +))
        }
    }
}

/// Who publishes a stream.
public struct PublisherInfo: Sendable {
    public var id: UInt64
    public var protocolName: String
    public var peer: String
}

/// What `GET /api/v1/streams` reports for one stream.
public struct StreamSnapshot: Sendable, Codable, Equatable {
    public var app: String
    public var stream: String
    public var published: Bool
    public var publisherProtocol: String?
    public var publisherPeer: String?
    public var info: StreamInfo
    public var hasVideo: Bool
    public var hasAudio: Bool
    /// Incoming bits per second over the last 5 s.
    public var bitrate: Int
    public var bytesIn: Int
    public var framesIn: Int
    public var uptimeSeconds: Double
    /// Publishing sessions so far (more than 1 after a republish).
    public var sessions: Int
    public var gopCacheBytes: Int
    public var gopCacheFrames: Int
    /// Viewers per delivery protocol.
    public var viewers: [String: Int]
    public var viewerCount: Int
}
