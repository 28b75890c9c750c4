import Foundation
import Logging
import NIOCore
import StreamHub
import Locks
import Synchronization

/// Keeps the HLS renditions of every live stream (MPEG-TS, and low-latency CMAF from the same cut): one
/// ``Segmenter`` per stream, fed by an internal hub consumer from the moment a publisher starts, and the
/// playlists, segments and parts that HTTP serves, including blocking playlist reloads.
///
/// Segmenting runs on one event loop, not on the publisher's thread. A republish (a new publishing session)
/// ends the segment in progress and marks the next one as a discontinuity. When the hub ends the stream (the
/// publisher did not come back within the grace period) the playlist is ended (EXT-X-ENDLIST).
public final class HLSOrigin: Sendable {
    let hub: StreamHub
    public let configuration: SegmenterConfiguration
    let eventLoop: any EventLoop
    let logger: Logger
    let wallClock: @Sendable () -> Int64

    /// What a blocking request (a playlist reload with `_HLS_msn`, or a hinted part) found.
    public enum WaitResult: Sendable, Equatable {
        /// The playlist contains what was asked for, or it has ended and never will.
        case ready
        /// The blocking limit passed first (the HLS draft's 503).
        case timedOut
        /// No such stream (any longer).
        case gone
        /// The server is shutting down (``releaseWaiters()``).
        case shuttingDown
    }

    /// Why a blocking request is refused at once.
    public enum BlockingRequestError: Error, Equatable {
        case noSuchStream
        /// Further ahead than a client that follows the playlist would ask (the HLS draft's 400).
        case tooFarAhead
    }

    struct Waiter {
        var id: Int
        var segment: Int
        var part: Int?
        var continuation: CheckedContinuation<WaitResult, Never>
    }

    struct Rendition {
        var segmenter: Segmenter
        /// When this rendition started (wall-clock ms): names its P2P swarm, whose chunk ids restart with it.
        var epoch: Int64
        var viewer: Viewer?
        var session = 0
        var ended = false
        var reported: Set<String> = []
        var waiters: [Waiter] = []
        /// Rendered playlists and the segmenter revision (and ended flag) they were rendered at.
        var rendered: [Bool: (revision: Int, ended: Bool, text: ByteBuffer)] = [:]
    }

    let renditions = Mutex<[StreamKey: Rendition]>([:])
    /// Set under the renditions' lock by ``releaseWaiters()``.
    let shuttingDown = Atomic<Bool>(false)
    let waiterIDs = Atomic<Int>(0)
    /// Told of every part the moment it is made (``onParts(_:)``).
    let partHandlers = Mutex<[@Sendable (StreamKey, _ epoch: Int64, [PartNotice]) -> Void]>([])

    /// Calls `handler` with the parts of a stream's rendition as they are made (on the segmenting event loop, after the
    /// parts can be served): the tracker announces them to the stream's P2P viewers.
    public func onParts(_ handler: @escaping @Sendable (StreamKey, _ epoch: Int64, [PartNotice]) -> Void) {
        partHandlers.withLock { $0.append(handler) }
    }

    public init(hub: StreamHub, configuration: SegmenterConfiguration = .init(), eventLoop: any EventLoop, logger: Logger,
                wallClock: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }) {
        self.hub = hub
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.logger = logger
        self.wallClock = wallClock
        hub.onPublish { [weak self] key in
            guard let self else { return }
            self.eventLoop.execute { self.attach(key) }
        }
    }

    /// Starts consuming a stream unless a consumer is already attached (a republish within the grace period).
    func attach(_ key: StreamKey) {
        let needed = renditions.withLock { r -> Bool in
            if let existing = r[key], existing.viewer != nil, !existing.ended { return false }
            var fresh = Rendition(segmenter: Segmenter(name: key.stream, configuration: configuration), epoch: wallClock())
            // Requests already blocked on this stream keep waiting (their timeout still ends them).
            fresh.waiters = r[key]?.waiters ?? []
            r[key] = fresh
            return true
        }
        guard needed, let viewer = try? hub.subscribe(key, protocolName: "hls", peer: "segmenter", isInternal: true) else { return }
        renditions.withLock { $0[key]?.viewer = viewer }
        viewer.onReadable { [weak self] in
            guard let self else { return }
            self.eventLoop.execute { self.drain(key) }
        }
    }

    func drain(_ key: StreamKey) {
        var newlyUnsupported: Set<String> = []
        var finished = false
        var woken: [Waiter] = []
        var made: [PartNotice] = []
        var epoch: Int64 = 0
        let now = wallClock()
        renditions.withLock { r in
            guard var rendition = r[key], let viewer = rendition.viewer else { return }
            let before = rendition.segmenter.nextPart
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
                    rendition.segmenter.add(frame, wallClock: now)
                }
            }
            made = rendition.segmenter.parts(since: before)
            epoch = rendition.epoch
            newlyUnsupported = rendition.segmenter.unsupported.subtracting(rendition.reported)
            rendition.reported.formUnion(newlyUnsupported)
            let segmenter = rendition.segmenter
            let ended = rendition.ended
            woken = rendition.waiters.filter { ended || segmenter.contains(segment: $0.segment, part: $0.part) }
            if !woken.isEmpty {
                let ids = Set(woken.map(\.id))
                rendition.waiters.removeAll { ids.contains($0.id) }
            }
            r[key] = rendition
        }
        for w in woken { w.continuation.resume(returning: .ready) }
        if !made.isEmpty {
            for handler in partHandlers.withLock({ $0 }) { handler(key, epoch, made) }
        }
        for codec in newlyUnsupported.sorted() {
            logger.warning("HLS cannot carry this codec; it is left out of the HLS renditions", metadata: [
                "stream": "\(key)", "codec": "\(codec)"])
        }
        if finished {
            logger.info("HLS playlist ended", metadata: ["stream": "\(key)"])
            // Players that were watching read the ended playlist and its last segments; then they go.
            let linger = TimeAmount.seconds(Int64(configuration.targetDuration * (3 + configuration.retainedAfterWindow)))
            eventLoop.scheduleTask(in: linger) { [weak self] in
                self?.renditions.withLock { r in
                    if r[key]?.ended == true { r[key] = nil }
                }
            }
        }
    }

    // MARK: - What HTTP serves

    /// A playlist's text (`lowLatency`: the CMAF one), rendered once per change and shared by every request; nil
    /// until the stream has a segment (MPEG-TS) or a part (CMAF).
    public func renderedPlaylist(_ key: StreamKey, lowLatency: Bool) -> ByteBuffer? {
        renditions.withLock { r in
            guard var rendition = r[key] else { return nil }
            let revision = rendition.segmenter.revision
            if let cached = rendition.rendered[lowLatency], cached.revision == revision, cached.ended == rendition.ended {
                return cached.text
            }
            var p = lowLatency ? rendition.segmenter.lowLatencyPlaylist : rendition.segmenter.playlist
            guard lowLatency ? !p.entries.isEmpty : !rendition.segmenter.segments.isEmpty else { return nil }
            p.ended = rendition.ended
            let text = ByteBuffer(string: p.render())
            rendition.rendered[lowLatency] = (revision, rendition.ended, text)
            r[key] = rendition
            return text
        }
    }

    public func segment(_ key: StreamKey, sequence: Int) -> Segment? {
        renditions.withLock { $0[key]?.segmenter.segment(sequence) }
    }

    public func part(_ key: StreamKey, segment: Int, index: Int) -> Part? {
        renditions.withLock { $0[key]?.segmenter.part(segment: segment, index: index) }
    }

    public func initSection(_ key: StreamKey, id: Int) -> InitSection? {
        renditions.withLock { $0[key]?.segmenter.initSection(id) }
    }

    /// The parts in the window, for publishing their ids and hashes.
    public func chunks(_ key: StreamKey) -> (initSections: [InitSection], segments: [Segment], open: [Part])? {
        renditions.withLock { r in
            guard let s = r[key]?.segmenter else { return nil }
            let open = s.open?.parts ?? []
            return (s.initSections, Array(s.segments), open)
        }
    }

    /// The start (wall-clock ms) of each rendition that is still live: with the stream's name, it names the
    /// stream's P2P swarm.
    public func epochs() -> [StreamKey: Int64] {
        renditions.withLock { r in r.filter { !$0.value.ended }.mapValues(\.epoch) }
    }

    // MARK: - Blocking requests

    /// Refuses a blocking request the HLS draft says to answer with 400 at once: more than two segments ahead
    /// of the playlist, or more than three parts (the Advance Part Limit) ahead of its last part.
    public func checkBlockingRequest(_ key: StreamKey, segment: Int, part: Int?) -> BlockingRequestError? {
        renditions.withLock { r in
            guard let s = r[key]?.segmenter else { return .noSuchStream }
            let last = s.lastSequence ?? (s.nextSequence - 1)
            if segment > last + 2 { return .tooFarAhead }
            if let part {
                let partsAhead = segment == last ? part - s.openPartCount : segment > last ? part + 1 : 0
                if partsAhead > 3 { return .tooFarAhead }
            }
            return nil
        }
    }

    /// Waits until the stream's playlist contains segment `segment` (or part `part` of it) or anything later,
    /// the playlist ends, or `timeout` passes.
    public func wait(_ key: StreamKey, segment: Int, part: Int?, timeout: TimeAmount) async -> WaitResult {
        let id = waiterIDs.add(1, ordering: .relaxed).newValue
        return await withCheckedContinuation { continuation in
            let immediate = renditions.withLock { r -> WaitResult? in
                if shuttingDown.load(ordering: .relaxed) { return .shuttingDown }
                guard var rendition = r[key] else { return .gone }
                if rendition.ended || rendition.segmenter.contains(segment: segment, part: part) { return .ready }
                rendition.waiters.append(Waiter(id: id, segment: segment, part: part, continuation: continuation))
                r[key] = rendition
                return nil
            }
            if let immediate {
                continuation.resume(returning: immediate)
                return
            }
            eventLoop.scheduleTask(in: timeout) { [weak self] in self?.expire(key, id: id) }
        }
    }

    /// At shutdown: every blocked request is answered now, and none waits from here on, so that the HTTP server
    /// need not wait out the blocking limit before it stops.
    public func releaseWaiters() {
        let waiters = renditions.withLock { r -> [Waiter] in
            shuttingDown.store(true, ordering: .relaxed)
            var all: [Waiter] = []
            for key in r.keys {
                all += r[key]!.waiters
                r[key]!.waiters = []
            }
            return all
        }
        for w in waiters { w.continuation.resume(returning: .shuttingDown) }
    }

    func expire(_ key: StreamKey, id: Int) {
        let waiter = renditions.withLock { r -> Waiter? in
            guard let i = r[key]?.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return r[key]?.waiters.remove(at: i)
        }
        waiter?.continuation.resume(returning: .timedOut)
    }

    /// Bytes of media the renditions hold in memory (MPEG-TS segments, CMAF parts, init sections), for metrics.
    public var memoryBytes: Int {
        renditions.withLock { r in
            r.values.reduce(0) { total, rendition in
                let s = rendition.segmenter
                return total + s.segments.reduce(0) { $0 + $1.data.readableBytes + $1.fmp4Size }
                    + s.initSections.reduce(0) { $0 + $1.data.readableBytes }
                    + (s.open.map { o in o.ts.readableBytes + o.parts.reduce(0) { $0 + $1.data.readableBytes } } ?? 0)
            }
        }
    }

    /// Blocking requests now waiting, for metrics and tests.
    public var waitingRequests: Int {
        renditions.withLock { $0.values.reduce(0) { $0 + $1.waiters.count } }
    }
}
