import Foundation
import HLS
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket
import P2PTracker
import StreamHub
import ServiceLifecycle
import Locks

/// The P2P tracker at `/tracker`: WebSocket plumbing around the ``Tracker`` state machine.
///
/// Each connection gets an id and an outbox. Messages are handed to the tracker under one lock; the actions it
/// returns are put in the outboxes of the connections they are for, and each connection's own task writes its
/// outbox to its socket. A connection that does not read (its outbox overflows) is closed, so a slow peer never
/// holds up the tracker or other peers.
final class TrackerEndpoint: Sendable {
    enum Outgoing: Sendable {
        case text(String)
        case close(WebSocketErrorCode, String)
    }

    struct State: Sendable {
        var tracker: Tracker
        var outboxes: [Tracker.ConnectionID: AsyncStream<Outgoing>.Continuation] = [:]
        /// The sockets, to close one whose peer stopped reading (a write to it may never finish).
        var channels: [Tracker.ConnectionID: any Channel] = [:]
        var nextID = 1
    }

    /// Messages waiting to be written to one connection; past this the peer is not reading and is closed.
    static let outboxLimit = 512

    let state: Mutex<State>
    let configuration: Tracker.Configuration
    let started = ContinuousClock.now
    let logger: Logger

    init(configuration: Tracker.Configuration = .init(), hls: HLSOrigin, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        let tracker = Tracker(configuration: configuration, seed: UInt64.random(in: 1...UInt64.max)) { hash in
            // Only live streams have swarms; there are few, so hashing each name is cheap, and this runs only for
            // a swarm's first announce.
            for (key, epoch) in hls.epochs() where InfoHash.liveSwarm(stream: "\(key)", epoch: epoch) == hash {
                return "\(key)"
            }
            return nil
        }
        state = Mutex(State(tracker: tracker))
        hls.onParts { [weak self] key, epoch, parts in self?.announce(parts, stream: key, epoch: epoch) }
    }

    /// Announces new parts to the stream's P2P viewers that asked (``TrackerResponse/part(infoHash:_:)``): each
    /// message is written once and put in every subscriber's outbox.
    func announce(_ parts: [PartNotice], stream: StreamKey, epoch: Int64) {
        let hash = InfoHash.liveSwarm(stream: "\(stream)", epoch: epoch)
        let texts = parts.map { p in
            TrackerResponse.part(infoHash: hash, .init(id: p.id, bytes: p.bytes, sha256: Data(p.sha256).base64EncodedString(),
                                                        durationMs: p.durationMs, independent: p.independent, time: p.wallClock,
                                                        initID: p.initID)).json
        }
        var overflowed: [Tracker.ConnectionID] = []
        state.withLock { s in
            for id in s.tracker.partSubscribers(hash) {
                guard let outbox = s.outboxes[id] else { continue }
                for text in texts {
                    if case .dropped = outbox.yield(.text(text)) { overflowed.append(id); break }
                }
            }
        }
        closeUnread(overflowed)
    }

    var now: Double { (ContinuousClock.now - started) / .seconds(1) }

    /// Serves one upgraded connection until either side closes it.
    /// Messages are read up to `frameLimit`, the port's WebSocket frame limit (which the rooms may have raised): the
    /// tracker refuses those over its own limit with 1009.
    func serve(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, channel: any Channel, frameLimit: Int,
               logger: Logger) async {
        let (outbox, continuation) = AsyncStream<Outgoing>.makeStream(bufferingPolicy: .bufferingOldest(Self.outboxLimit))
        let id = state.withLock { s in
            let id = s.nextID
            s.nextID += 1
            s.outboxes[id] = continuation
            s.channels[id] = channel
            s.tracker.connected(id, now: now)
            return id
        }
        await withTaskGroup(of: Void.self) { group in
            // Writes the outbox; ends when the outbox is finished (closed by the tracker, or overflowed).
            group.addTask {
                for await message in outbox {
                    do {
                        switch message {
                        case .text(let text): try await outbound.write(.text(text))
                        case .close(let code, let reason):
                            try await outbound.close(code, reason: reason)
                            return
                        }
                    } catch {
                        return
                    }
                }
            }
            // Reads messages; ends when the peer closes, the socket fails, or a message is over the limit.
            group.addTask { [self] in
                do {
                    for try await message in inbound.messages(maxSize: max(frameLimit, configuration.maxMessageBytes)) {
                        let text = switch message {
                        case .text(let t): t
                        case .binary(let b): String(buffer: b)  // browsers send text; binary JSON reads the same
                        }
                        deliver(state.withLock { $0.tracker.received(text, from: id, now: now) })
                    }
                } catch {
                    logger.debug("tracker connection ended", metadata: ["error": "\(error)"])
                }
            }
            // Whichever ends first ends the connection. After a close sent by the tracker, the reader goes on
            // (its messages are ignored) until the peer answers the close, for up to 5 s: closing the socket on
            // unread data would reset it, and the peer would lose the close and the messages before it.
            await group.next()
            forget(id)
            group.addTask { try? await Task.sleep(for: .seconds(5)) }
            await group.next()
            group.cancelAll()
        }
    }

    /// Puts each action's message in its connection's outbox; closes connections whose outbox is full.
    func deliver(_ actions: [Tracker.Action]) {
        var overflowed: [Tracker.ConnectionID] = []
        state.withLock { s in
            for action in actions {
                switch action {
                case .send(let to, let response):
                    guard let outbox = s.outboxes[to] else { continue }
                    if case .dropped = outbox.yield(.text(response.json)) { overflowed.append(to) }
                case .close(let to, let error):
                    guard let outbox = s.outboxes.removeValue(forKey: to) else { continue }
                    let code: WebSocketErrorCode = if case .messageTooLarge = error { .messageTooLarge } else { .policyViolation }
                    outbox.yield(.close(code, String(error.description.prefix(120))))
                    outbox.finish()
                }
            }
        }
        closeUnread(overflowed)
    }

    /// Closes connections whose outbox overflowed: their peers do not read.
    func closeUnread(_ overflowed: [Tracker.ConnectionID]) {
        for id in overflowed {
            logger.info("tracker peer closed: it does not read its messages", metadata: ["connection": "\(id)",
                                                                                          "unread": "\(Self.outboxLimit)"])
            let channel = state.withLock { $0.channels[id] }
            forget(id)
            channel?.close(promise: nil)
        }
    }

    /// The connection is gone (or is being closed): the tracker forgets its peers now.
    func forget(_ id: Tracker.ConnectionID) {
        let outbox = state.withLock { s in
            s.tracker.disconnected(id)
            s.channels.removeValue(forKey: id)
            return s.outboxes.removeValue(forKey: id)
        }
        outbox?.finish()
    }

    /// Closes every connection with 1001 (going away): at shutdown, so the HTTP server need not wait for them.
    func closeAll() {
        let outboxes = state.withLock { s in
            let all = s.outboxes
            s.outboxes.removeAll()
            for id in all.keys { s.tracker.disconnected(id) }
            return all
        }
        for outbox in outboxes.values {
            outbox.yield(.close(.goingAway, "server shutting down"))
            outbox.finish()
        }
    }

    /// The operator's P2P switch for one stream (``Tracker/setP2P(_:stream:)``): switched off, the stream's peers
    /// are told at once. False when refused: more than ``maxSwitchedOff`` streams switched off.
    func setP2P(_ enabled: Bool, stream: String) -> Bool {
        let actions: [Tracker.Action]? = state.withLock { s in
            if !enabled, !s.tracker.p2pOff.contains(stream), s.tracker.p2pOff.count >= Self.maxSwitchedOff { return nil }
            return s.tracker.setP2P(enabled, stream: stream)
        }
        guard let actions else { return false }
        logger.info("P2P switched \(enabled ? "on" : "off") by the operator", metadata: ["stream": "\(stream)", "peersTold": "\(actions.count)"])
        deliver(actions)
        return true
    }

    /// Streams an operator may switch P2P off for at once (names of streams that may never go live count too).
    static let maxSwitchedOff = 10_000

    /// Streams whose P2P is switched off.
    var p2pOff: Set<String> { state.withLock { $0.tracker.p2pOff } }

    /// Swarm sizes and counters for `/api/v1/p2p`.
    func snapshot() -> (swarms: [(infoHash: InfoHash, stream: String, peers: Int)], statistics: Tracker.Statistics) {
        state.withLock { ($0.tracker.swarmSizes(), $0.tracker.statistics) }
    }
}

/// Runs beside the HTTP server and closes the tracker's WebSockets when shutdown begins.
struct TrackerShutdown: Service {
    let endpoint: TrackerEndpoint

    func run() async throws {
        // Returns when shutdown begins (or throws when cancelled): either way the connections go.
        try? await gracefulShutdown()
        endpoint.closeAll()
    }
}
