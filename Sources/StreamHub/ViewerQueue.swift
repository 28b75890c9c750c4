import DequeModule

/// The bounded queue between a source and one viewer, with frame skipping (pure: no locks, time passed in).
///
/// A viewer whose connection is slower than the stream would otherwise grow memory and delay without
/// limit. The bound is on what the viewer has not taken yet: more than `maxBytes` queued, or a frame that
/// has waited longer than `maxWait`. Waiting time, not media time, is the measure, so the cached GOP a new
/// viewer receives at once (which may span 10 s of media) does not count as falling behind.
///
/// Past the bound the viewer is moved forward: to the newest keyframe already queued if that brings it
/// within bounds, or else everything queued is dropped and media is discarded until the next keyframe.
/// Configuration frames (sequence headers, metadata) are never dropped: the decoder needs them.
public struct ViewerQueue: Sendable {
    public var maxBytes: Int
    /// Nanoseconds a frame may wait in the queue.
    public var maxWait: UInt64

    struct Entry {
        var frame: MediaFrame
        var enqueuedAt: UInt64
    }

    var entries: Deque<Entry> = []
    public private(set) var bytes = 0
    /// True after a skip that emptied the queue: media is dropped until a keyframe arrives.
    public private(set) var waitingForKeyframe = false
    public private(set) var skips = 0
    public private(set) var droppedFrames = 0
    public private(set) var droppedBytes = 0
    /// The most bytes the queue held after enforcing its bound.
    public private(set) var peakBytes = 0

    public init(maxBytes: Int, maxWait: UInt64) {
        self.maxBytes = maxBytes
        self.maxWait = maxWait
    }

    public var count: Int { entries.count }

    /// Queues a frame at monotonic time `now` (ns), then enforces the bound. A stream with video waits
    /// for a keyframe after a skip; an audio-only stream (`hasVideo` false) resumes with the next frame.
    public mutating func push(_ frame: MediaFrame, now: UInt64, hasVideo: Bool) {
        if waitingForKeyframe && !frame.isConfiguration {
            if frame.isKeyframe || !hasVideo {
                waitingForKeyframe = false
            } else {
                droppedFrames += 1
                droppedBytes += frame.size
                return
            }
        }
        entries.append(Entry(frame: frame, enqueuedAt: now))
        bytes += frame.size
        if overBound(now: now) { skip(now: now, hasVideo: hasVideo) }
        peakBytes = max(peakBytes, bytes)
    }

    /// Takes frames from the head, oldest first, up to `maxBytes` (at least one frame). What stays queued can
    /// still be skipped; what is taken is committed to the connection.
    public mutating func drain(maxBytes: Int = .max) -> [MediaFrame] {
        var out: [MediaFrame] = []
        var taken = 0
        while let e = entries.first, out.isEmpty || taken + e.frame.size <= maxBytes {
            out.append(e.frame)
            taken += e.frame.size
            entries.removeFirst()
        }
        bytes -= taken
        return out
    }

    func overBound(now: UInt64) -> Bool {
        guard let oldest = entries.first(where: { !$0.frame.isConfiguration }) else { return bytes > maxBytes }
        return bytes > maxBytes || now &- oldest.enqueuedAt > maxWait
    }

    mutating func skip(now: UInt64, hasVideo: Bool) {
        skips += 1
        if let k = entries.lastIndex(where: { $0.frame.isKeyframe }), k > 0 {
            dropMedia(before: k)
            // The keyframe arrived recently enough and what follows fits: resume from it.
            if !overBound(now: now) { return }
        }
        dropMedia(before: entries.count)
        waitingForKeyframe = hasVideo
    }

    /// Drops every frame before index `end`, except the newest configuration frame of each kind among them.
    mutating func dropMedia(before end: Int) {
        var newest: [MediaFrame.Kind: Entry] = [:]
        var removedBytes = 0
        for e in entries.prefix(end) {
            removedBytes += e.frame.size
            if e.frame.isConfiguration { newest[e.frame.kind] = e }
        }
        entries.removeFirst(end)
        // Metadata first, then the sequence headers, as a player expects them at the start of a stream.
        let kept = [MediaFrame.Kind.metadata, .video, .audio].compactMap { newest[$0] }
        for e in kept.reversed() { entries.prepend(e) }
        let keptBytes = kept.reduce(0) { $0 + $1.frame.size }
        droppedFrames += end - kept.count
        droppedBytes += removedBytes - keptBytes
        bytes -= removedBytes - keptBytes
    }
}
