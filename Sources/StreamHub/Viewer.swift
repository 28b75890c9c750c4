import Locks

/// One viewer of a source: the consumer end of a ``ViewerQueue``.
///
/// The source pushes frames from the publisher's thread and never waits; the viewer's connection task
/// awaits ``next()`` and writes what it gets at its own pace. A viewer that stalls only ever costs its
/// own queue, which is bounded; one that vanishes is detached when its task calls ``close()``.
public final class Viewer: Sendable {
    public let id: UInt64
    public let key: StreamKey
    /// Delivery protocol, for counting viewers per protocol: "rtmp", "http-flv", ...
    public let protocolName: String
    /// A description of the peer for logs and the API (usually its address).
    public let peer: String
    public let joinedAt: UInt64
    /// A consumer inside the server (the HLS segmenter), not counted as a viewer.
    public let isInternal: Bool

    struct State {
        var queue: ViewerQueue
        var waiter: CheckedContinuation<[MediaFrame]?, Never>?
        var closed = false
        var sentFrames = 0
        var sentBytes = 0
        var batchLimit = Int.max
        /// Push-style consumers (an event-loop handler) are told when frames arrive instead of awaiting.
        var notify: (@Sendable () -> Void)?
        var notifyPending = false
    }

    let state: Mutex<State>
    let detach: @Sendable (Viewer) -> Void

    init(id: UInt64, key: StreamKey, protocolName: String, peer: String, joinedAt: UInt64, isInternal: Bool = false,
         queue: ViewerQueue, detach: @escaping @Sendable (Viewer) -> Void) {
        self.isInternal = isInternal
        self.id = id
        self.key = key
        self.protocolName = protocolName
        self.peer = peer
        self.joinedAt = joinedAt
        self.state = Mutex(State(queue: queue))
        self.detach = detach
    }

    /// Called by the source, never blocks.
    func push(_ frame: MediaFrame, now: UInt64, hasVideo: Bool) {
        let (waiter, batch, notify): (CheckedContinuation<[MediaFrame]?, Never>?, [MediaFrame], (@Sendable () -> Void)?)
        (waiter, batch, notify) = state.withLock { s in
            guard !s.closed else { return (nil, [], nil) }
            s.queue.push(frame, now: now, hasVideo: hasVideo)
            guard s.queue.count > 0 else { return (nil, [], nil) }
            if let w = s.waiter {
                s.waiter = nil
                return (w, take(&s), nil)
            }
            guard let n = s.notify, !s.notifyPending else { return (nil, [], nil) }
            s.notifyPending = true
            return (nil, [], n)
        }
        waiter?.resume(returning: batch)
        notify?()
    }

    /// Switches the viewer to push delivery: `notify` is called (from the publisher's thread, so it should
    /// only schedule work) when frames are waiting or the viewer ends; the consumer then calls ``take(maxBytes:)``.
    /// Called once, before the first ``take(maxBytes:)``; it fires at once if frames are already queued.
    public func onReadable(_ notify: @escaping @Sendable () -> Void) {
        let fire = state.withLock { s -> Bool in
            s.notify = notify
            s.notifyPending = s.queue.count > 0 || s.closed
            return s.notifyPending
        }
        if fire { notify() }
    }

    /// The frames queued now, oldest first, at most `maxBytes` (but at least one); empty if none are queued;
    /// nil once the viewer is closed and drained. Never waits. Re-arms the ``onReadable(_:)`` notification.
    public func take(maxBytes: Int = 32 << 10) -> [MediaFrame]? {
        state.withLock { s in
            s.notifyPending = false
            if s.queue.count == 0 { return s.closed ? nil : [] }
            s.batchLimit = maxBytes
            return take(&s)
        }
    }

    private func take(_ s: inout State) -> [MediaFrame] {
        let batch = s.queue.drain(maxBytes: s.batchLimit)
        s.sentFrames += batch.count
        s.sentBytes += batch.reduce(0) { $0 + $1.size }
        return batch
    }

    /// The frames queued since the last call, oldest first, at most `maxBytes` of them (but at least one),
    /// waiting for at least one. Returns nil once the viewer is closed (by ``close()``, by the source ending,
    /// or by cancellation). A small `maxBytes` keeps frames in the queue, where frame skipping still applies,
    /// rather than in a batch the connection must send whole.
    public func next(maxBytes: Int = 32 << 10) async -> [MediaFrame]? {
        state.withLock { $0.batchLimit = maxBytes }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<[MediaFrame]?, Never>) in
                let immediate: [MediaFrame]?? = state.withLock { s in
                    if s.queue.count > 0 { return .some(take(&s)) }
                    if s.closed || Task.isCancelled { return .some(nil) }
                    s.waiter = c
                    return .none
                }
                if let immediate { c.resume(returning: immediate) }
            }
        } onCancel: {
            finish()
        }
    }

    /// Ends the viewer from the source's side: a pending ``next()`` returns nil.
    func finish() {
        let (waiter, notify) = state.withLock { s -> (CheckedContinuation<[MediaFrame]?, Never>?, (@Sendable () -> Void)?) in
            let wasClosed = s.closed
            s.closed = true
            defer { s.waiter = nil }
            return (s.waiter, wasClosed ? nil : s.notify)
        }
        waiter?.resume(returning: nil)
        notify?()
    }

    /// Ends the viewer from the connection's side and removes it from its source. Idempotent.
    public func close() {
        finish()
        detach(self)
    }

    public var isClosed: Bool { state.withLock { $0.closed } }

    public var stats: ViewerStats {
        state.withLock { s in
            ViewerStats(id: id, protocolName: protocolName, peer: peer, queuedBytes: s.queue.bytes,
                        queuedFrames: s.queue.count, peakQueuedBytes: s.queue.peakBytes,
                        maxQueuedBytes: s.queue.maxBytes, skips: s.queue.skips,
                        droppedFrames: s.queue.droppedFrames, droppedBytes: s.queue.droppedBytes,
                        sentFrames: s.sentFrames, sentBytes: s.sentBytes)
        }
    }
}

/// A snapshot of one viewer's queue, for the API and tests.
public struct ViewerStats: Sendable, Codable, Equatable {
    public var id: UInt64
    public var protocolName: String
    public var peer: String
    public var queuedBytes: Int
    public var queuedFrames: Int
    public var peakQueuedBytes: Int
    public var maxQueuedBytes: Int
    public var skips: Int
    public var droppedFrames: Int
    public var droppedBytes: Int
    /// Frames and bytes handed to the connection (not necessarily acknowledged by the peer yet).
    public var sentFrames: Int
    public var sentBytes: Int
}
