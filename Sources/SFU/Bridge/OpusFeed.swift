import Audio
import FLV
import Logging
import NIOConcurrencyHelpers
import NIOCore
import StreamHub

/// The audio of one hub stream for all its WebRTC viewers: its AAC transcoded to Opus once (``AACToOpus``),
/// whatever the number of viewers, and each packet handed to every viewer's ``OpusSender``.
///
/// It is an internal hub viewer of the stream, started with the stream's first WebRTC viewer that takes audio
/// and stopped when the last one leaves. It starts at the live edge: the hub hands a new viewer its cached GOP,
/// seconds old, and audio sent from it would stay that far behind (audio is never sped up), or arrive in a burst
/// that the browser's jitter buffer takes as network jitter and holds on to. So access units the hub had before
/// the feed subscribed are skipped (their configuration is kept). A republish goes on in the same feed: the hub
/// keeps the viewer, and a new AudioSpecificConfig replaces the decoder.
final class OpusFeed: @unchecked Sendable {
    struct Stats: Sendable, Codable {
        /// The publisher's audio codec ("aac", "mp3" ...) as last seen.
        var codec: String?
        var transcoder: AACToOpus.Stats
        /// Access units not transcoded because they came from the hub's cache (before the feed started).
        var skippedBehindLiveEdge = 0
        /// The longest time between two access units arriving from the publisher, and between the first arrival
        /// and its packets leaving the transcoder (the delay transcoding adds), in ms.
        var longestInputGapMs = 0.0
        var transcodeDelay = DelaySummary()
    }

    /// Milliseconds from an access unit's arrival in the hub to the packets it completed being handed to the
    /// viewers' senders: the bridge's own audio delay, without the 20 ms wait for a packet's worth of samples.
    struct DelaySummary: Sendable, Codable {
        var samples = 0
        var meanMs = 0.0
        var maxMs = 0.0
    }

    let key: StreamKey
    let viewer: Viewer
    let eventLoop: any EventLoop
    /// Touched only on `eventLoop`.
    let transcoder: AACToOpus
    let warnings: BridgeWarnings
    let logger: Logger

    let lock = NIOLock()
    var senders: [ObjectIdentifier: OpusSender] = [:]
    var closed = false
    var latest: Stats
    var lastArrival: UInt64?
    let now: @Sendable () -> UInt64

    init(key: StreamKey, hub: StreamHub, options: AACToOpus.Options, eventLoop: any EventLoop,
         warnings: BridgeWarnings, logger: Logger) throws {
        now = { hub.now }
        transcoder = try AACToOpus(options: options)
        viewer = try hub.subscribe(key, protocolName: "webrtc-audio", peer: "AAC to Opus", isInternal: true)
        (self.key, self.eventLoop, self.warnings, self.logger) = (key, eventLoop, warnings, logger)
        latest = Stats(transcoder: transcoder.stats)
    }

    func start() {
        viewer.onReadable { [weak self] in
            guard let self else { return }
            eventLoop.execute { self.drain() }
        }
    }

    /// A viewer's sender joins; false when the feed has already ended (the stream is gone).
    func add(_ sender: OpusSender) -> Bool {
        lock.withLock {
            guard !closed else { return false }
            senders[ObjectIdentifier(sender)] = sender
            return true
        }
    }

    /// A viewer's sender leaves; true when it was the last (the caller then stops the feed).
    func remove(_ sender: OpusSender) -> Bool {
        lock.withLock {
            senders[ObjectIdentifier(sender)] = nil
            return senders.isEmpty
        }
    }

    func stop() {
        lock.withLock { closed = true }
        viewer.close()
    }

    var stats: Stats { lock.withLock { latest } }

    func drain() {
        while true {
            guard let batch = viewer.take(maxBytes: 64 << 10) else {
                // The hub ended the stream: its audio viewers end with it.
                let ended = lock.withLock { () -> [OpusSender] in
                    closed = true
                    defer { senders.removeAll() }
                    return Array(senders.values)
                }
                for s in ended { s.feedEnded() }
                return
            }
            if batch.isEmpty { return }
            var packets: [AACToOpus.Packet] = []
            var oldest: UInt64?
            for frame in batch where frame.kind == .audio {
                let made = transcode(frame)
                if !made.isEmpty { oldest = oldest ?? frame.receivedAt }
                packets += made
            }
            let (targets, stats) = (lock.withLock { Array(senders.values) }, transcoder.stats)
            if !packets.isEmpty { for t in targets { t.deliver(packets) } }
            let delay = oldest.map { Double(now() &- $0) / 1e6 }
            lock.withLock {
                latest.transcoder = stats
                if let delay {
                    var d = latest.transcodeDelay
                    d.samples += 1
                    d.meanMs += (delay - d.meanMs) / Double(d.samples)
                    d.maxMs = max(d.maxMs, delay)
                    latest.transcodeDelay = d
                }
            }
        }
    }

    func transcode(_ frame: MediaFrame) -> [AACToOpus.Packet] {
        // An empty audio message is RTMP's "silence": nothing to decode.
        guard let header = try? AudioTagHeader(parsing: frame.payload) else { return [] }
        lock.withLock { latest.codec = header.format.name }
        guard header.isAAC else {
            report("the stream's audio is \(header.format.name): WebRTC viewers get no audio (AAC is transcoded to Opus, nothing else)", frame)
            return []
        }
        var body = frame.payload
        body.moveReaderIndex(forwardBy: min(header.headerSize, body.readableBytes))
        do {
            switch header.packetType {
            case .sequenceStart:
                try transcoder.configure(Array(body.readableBytesView))
                return []
            case .codedFrames:
                if frame.receivedAt < viewer.joinedAt {
                    lock.withLock { latest.skippedBehindLiveEdge += 1 }
                    return []
                }
                if let last = lastArrival {
                    let gap = Double(frame.receivedAt &- last) / 1e6
                    lock.withLock { latest.longestInputGapMs = max(latest.longestInputGapMs, gap) }
                }
                lastArrival = frame.receivedAt
                return try transcoder.transcode(body.readableBytesView, timestamp: Int64(frame.timestamp))
            case .other:
                return []
            }
        } catch {
            report("audio: \(error)", frame)
            return []
        }
    }

    /// Logged once per stream and publishing session; listed in the API with the video's warnings.
    func report(_ message: String, _ frame: MediaFrame) {
        if warnings.note(stream: key.description, session: frame.session, message) {
            logger.warning("RTMP to WebRTC: \(message)", metadata: ["stream": "\(key)"])
        }
    }
}
