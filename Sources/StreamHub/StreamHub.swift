import Foundation
import Logging
import NIOCore
import Locks

/// All live streams of the process, by `app/stream`: where publishers put frames and viewers take them.
public final class StreamHub: Sendable {
    /// Monotonic nanoseconds; tests inject their own.
    public typealias Clock = @Sendable () -> UInt64

    public let configuration: HubConfiguration
    let clock: Clock
    let logger: Logger
    let sources = Mutex<[StreamKey: Source]>([:])
    let ids = Atomic<UInt64>(0)
    let publishObservers = Mutex<[@Sendable (StreamKey) -> Void]>([])
    let playbackGate = Mutex<(@Sendable (StreamKey, String?) -> String?)?>(nil)

    public init(configuration: HubConfiguration = .init(), clock: Clock? = nil, logger: Logger = Logger(label: "liveswarm.hub")) {
        self.configuration = configuration
        self.logger = logger
        if let clock {
            self.clock = clock
        } else {
            let epoch = ContinuousClock.now
            self.clock = { epoch.duration(to: .now).nanoseconds }
        }
    }

    /// A process-unique id for publishers, viewers and connections.
    public func makeID() -> UInt64 { ids.add(1, ordering: .relaxed).newValue }

    /// Starts publishing `key`. Throws ``HubError/alreadyPublishing(_:)`` if it is live already.
    public func publish(_ key: StreamKey, protocolName: String, peer: String) throws(HubError) -> Publisher {
        let info = PublisherInfo(id: makeID(), protocolName: protocolName, peer: peer)
        let source = sources.withLock { all in
            if let s = all[key] { return s }
            let s = Source(key: key, configuration: configuration, clock: clock, logger: logger,
                           nextID: { [weak self] in self?.makeID() ?? 0 })
            all[key] = s
            return s
        }
        try source.attach(info)
        for observe in publishObservers.withLock({ $0 }) { observe(key) }
        logger.info("publish started", metadata: ["stream": "\(key)", "publisher": "\(info.id)",
                                                  "protocol": "\(protocolName)", "peer": "\(peer)"])
        return Publisher(info: info, source: source, hub: self)
    }

    func unpublished(_ publisher: Publisher) {
        let keepForViewers = publisher.source.detach(publisherID: publisher.info.id)
        logger.info("publish ended", metadata: ["stream": "\(publisher.source.key)", "publisher": "\(publisher.info.id)",
                                                "viewersWaiting": "\(keepForViewers)"])
        if !keepForViewers { sweep() }
    }

    /// Adds a viewer to a stream that is live or whose publisher left less than the grace period ago.
    public func subscribe(_ key: StreamKey, protocolName: String, peer: String, isInternal: Bool = false) throws(HubError) -> Viewer {
        // A source without a publisher is within its grace period: its viewers wait for the republish.
        guard let source = sources.withLock({ $0[key] }) else { throw .streamNotFound(key) }
        return source.subscribe(protocolName: protocolName, peer: peer, isInternal: isInternal)
    }

    /// Calls `observe` each time a publisher takes a stream (from the publisher's thread: keep it short).
    public func onPublish(_ observe: @escaping @Sendable (StreamKey) -> Void) {
        publishObservers.withLock { $0.append(observe) }
    }

    /// Who may watch what: `gate` gets a stream and the viewer's token (nil without one) and returns why that
    /// viewer may not watch it, or nil. Every viewer-facing surface asks (``playbackRefusal(_:token:)``) before
    /// it serves a stream; without a gate every stream is open.
    public func setPlaybackGate(_ gate: @escaping @Sendable (StreamKey, String?) -> String?) {
        playbackGate.withLock { $0 = gate }
    }

    /// Why a viewer with `token` may not watch `key`, or nil when it may.
    public func playbackRefusal(_ key: StreamKey, token: String?) -> String? {
        playbackGate.withLock { $0 }?(key, token)
    }

    /// The `token` parameter of a URL query ("a=1&token=T"), the way viewers give theirs.
    public static func token(inQuery query: Substring) -> String? {
        // Bytes, as a URL is: a Character split misses an "&" that a mark makes part of a grapheme.
        for pair in query.utf8.split(separator: UInt8(ascii: "&")) where pair.starts(with: "token=".utf8) {
            let value = String(decoding: pair.dropFirst(6), as: UTF8.self)
            // `%XX` escapes decoded (a token pasted into a URL may have them); as it is when an escape is bad.
            return value.removingPercentEncoding ?? value
        }
        return nil
    }

    public func source(_ key: StreamKey) -> Source? { sources.withLock { $0[key] } }

    /// Snapshots of every stream, sorted by name.
    public func snapshot() -> [StreamSnapshot] {
        let all = sources.withLock { Array($0.values) }
        return all.sorted { $0.key < $1.key }.map { $0.snapshot() }
    }

    /// Removes streams whose publisher has been gone longer than the grace period, ending their viewers.
    /// Called about once a second by the server.
    public func sweep() {
        let now = clock()
        let all = sources.withLock { Array($0.values) }
        for s in all where s.expireIfAbandoned(now: now) {
            sources.withLock { all in
                // Re-check under the map lock: a publisher may have taken it in between.
                if all[s.key] === s, !s.isPublished { all[s.key] = nil }
            }
            logger.info("stream removed", metadata: ["stream": "\(s.key)"])
        }
    }

    /// Ends every viewer of every stream (server shutdown): their ``Viewer/next()`` returns nil.
    public func endAllViewers() {
        for source in sources.withLock({ Array($0.values) }) {
            for v in source.viewers { v.close() }
        }
    }

    public var now: UInt64 { clock() }
}

/// The publishing end of a stream, held by the connection that publishes.
public final class Publisher: Sendable {
    public let info: PublisherInfo
    public let source: Source
    let hub: StreamHub
    let ended = Atomic<Bool>(false)

    init(info: PublisherInfo, source: Source, hub: StreamHub) {
        self.info = info
        self.source = source
        self.hub = hub
    }

    /// One audio or video message body (an FLV tag body) with the publisher's timestamp in ms.
    public func send(_ kind: MediaFrame.Kind, timestamp: UInt32, payload: ByteBuffer) {
        source.deliver(kind: kind, timestamp: timestamp, payload: payload, publisherID: info.id)
    }

    /// Ends publishing; viewers wait for a new publisher for the grace period. Idempotent.
    public func unpublish() {
        guard !ended.exchange(true, ordering: .acquiringAndReleasing) else { return }
        hub.unpublished(self)
    }
}

