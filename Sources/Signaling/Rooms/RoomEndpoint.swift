import Foundation
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket
import SFU
import StreamHub
import ServiceLifecycle
import Locks

/// The rooms' WebSocket at `/ws`: plumbing around the ``RoomService`` state machine and the SFU's
/// ``RoomForwarder``.
///
/// Each connection gets an id and an outbox. Messages are handed to the service under one lock; the actions it
/// returns go into the outboxes of the connections they are for, and each connection's own task writes its
/// outbox to its socket. A connection that does not read (its outbox overflows) is closed, so one stuck client
/// never holds up a room.
public final class RoomEndpoint: Sendable {
    enum Outgoing: Sendable {
        case text(String)
        case close(WebSocketErrorCode, String)
    }

    struct State: Sendable {
        var service: RoomService
        var outboxes: [RoomService.ConnectionID: AsyncStream<Outgoing>.Continuation] = [:]
        var channels: [RoomService.ConnectionID: any Channel] = [:]
        var nextID = 1
    }

    /// Messages waiting to be written to one connection; past this the client is not reading and is closed.
    static let outboxLimit = 1024

    let state: Mutex<State>
    public let configuration: RoomService.Configuration
    public let forwarder: RoomForwarder
    let started = ContinuousClock.now
    let logger: Logger

    public init(configuration: RoomService.Configuration, registry: RouterRegistry, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        // The forwarder reports a publish transport that ended by itself; the endpoint is made after it.
        let relay = Relay()
        forwarder = RoomForwarder(registry: registry, videoCodec: configuration.videoCodec) { room, participant in
            relay.endpoint?.publisherGone(room: room, participant: participant)
        }
        state = Mutex(State(service: RoomService(configuration: configuration, media: SFURoomMedia(forwarder: forwarder))))
        relay.set(self)
        for room in configuration.broadcast {
            do throws(RoomMediaError) { try forwarder.setBroadcast(room: room, enabled: true) } catch {
                logger.error("room broadcast refused", metadata: ["room": "\(room)", "error": "\(error)"])
            }
        }
    }

    /// Who may watch a broadcast room's hub streams (`room-ROOM/PARTICIPANT`): with a room secret, only a viewer
    /// with a valid token for that room (any token of the room: one that may not publish will do). Nil when
    /// `token` may watch `key`; other streams are not the rooms' business.
    public func playbackRefusal(_ key: StreamKey, token: String?) -> String? {
        Self.playbackRefusal(key, token: token, secret: configuration.secret, now: Date().timeIntervalSince1970)
    }

    /// ``playbackRefusal(_:token:)`` on its inputs: pure.
    static func playbackRefusal(_ key: StreamKey, token: String?, secret: String?, now: Double) -> String? {
        guard let room = RoomForwarder.room(ofHubKey: key), let secret else { return nil }
        guard let token, !token.isEmpty else {
            return "room \(room) needs a token: add ?token=JWT (a room token, as for joining)"
        }
        do throws(RoomToken.Failure) {
            let t = try RoomToken(verifying: token, secret: secret, now: now)
            return t.room == room ? nil : "the token is for room \(t.room), not \(room)"
        } catch {
            return error.description
        }
    }

    /// Weakly: the endpoint holds the forwarder, whose callback holds this.
    final class Relay: Sendable {
        struct Weak { weak var endpoint: RoomEndpoint? }
        let box = Mutex(Weak())
        var endpoint: RoomEndpoint? { box.withLock { $0.endpoint } }
        func set(_ e: RoomEndpoint) { box.withLock { $0.endpoint = e } }
    }

    var now: Double { (ContinuousClock.now - started) / .seconds(1) }

    /// Serves one upgraded connection until either side closes it. `iceServers` go into its `joined`.
    /// `frameLimit` is the WebSocket's own frame limit (the port's, shared with the tracker): messages are read up to
    /// it and the service refuses those over the rooms' limit with 1009.
    public func serve(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, channel: any Channel,
                      iceServers: [ICEServer], frameLimit: Int, logger: Logger) async {
        let (outbox, continuation) = AsyncStream<Outgoing>.makeStream(bufferingPolicy: .bufferingOldest(Self.outboxLimit))
        let closes = CloseWatcher.install(on: channel)
        let id = state.withLock { s in
            let id = s.nextID
            s.nextID += 1
            s.outboxes[id] = continuation
            s.channels[id] = channel
            s.service.connected(id, iceServers: iceServers, now: now)
            return id
        }
        await withTaskGroup(of: Void.self) { group in
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
            group.addTask { [self] in
                do {
                    for try await message in inbound.messages(maxSize: max(frameLimit, configuration.maxMessageBytes)) {
                        let text = switch message {
                        case .text(let t): t
                        case .binary(let b): String(buffer: b)
                        }
                        let actions = state.withLock { $0.service.received(text, from: id, now: now) }
                        deliver(actions)
                        if actions.contains(where: { if case .close(id, _, _) = $0 { true } else { false } }) { break }
                    }
                } catch {
                    logger.debug("room connection ended", metadata: ["error": "\(error)"])
                }
            }
            // Whichever ends first ends the connection; how it ended decides whether the seat is held. After a
            // close sent by the server, the reader goes on (its messages are ignored) until the client answers, for
            // up to 5 s.
            await group.next()
            let first = closes.value
            let ending: RoomService.Ending = switch first {
            case .some(let f) where f.byClient: [1000, 1001].contains(f.code) ? .closed : f.code == 4000 ? .unloading : .lost
            // The server closed it: for an unanswered ping (1001, "Ping timeout") the client may be alive behind a
            // dead path; anything else (a flood, an oversized message, a protocol error) costs the seat.
            case .some(let f): f.code == 1001 ? .lost : .dropped
            case nil: .lost
            }
            // Info: why a participant dropped (a ping timeout, a page unloading) is what an operator asks first.
            logger.info("room connection ended", metadata: ["connection": "\(id)", "ending": "\(ending)",
                                                            "close": "\(first.map { "\($0.code) by the \($0.byClient ? "client" : "server")" } ?? "none")"])
            forget(id, ending)
            group.addTask { try? await Task.sleep(for: .seconds(5)) }
            await group.next()
            group.cancelAll()
        }
    }

    /// Puts each message in its connection's outbox; closes what the actions close and connections whose outbox
    /// is full.
    func deliver(_ actions: [RoomService.Action]) {
        var overflowed: [RoomService.ConnectionID] = []
        var closed: [(RoomService.ConnectionID, String)] = []
        state.withLock { s in
            for action in actions {
                switch action {
                case .send(let to, let message):
                    guard let outbox = s.outboxes[to] else { continue }
                    if case .dropped = outbox.yield(.text(message.json)) { overflowed.append(to) }
                case .close(let to, let code, let reason):
                    guard let outbox = s.outboxes.removeValue(forKey: to) else { continue }
                    outbox.yield(.close(WebSocketErrorCode(codeNumber: Int(code)), reason))
                    outbox.finish()
                    closed.append((to, reason))
                }
            }
        }
        for (id, reason) in closed where reason != "left" {
            logger.info("room connection closed", metadata: ["connection": "\(id)", "reason": "\(reason)"])
        }
        for id in overflowed {
            logger.info("room client closed: it does not read its messages", metadata: ["connection": "\(id)"])
            let channel = state.withLock { $0.channels[id] }
            // It may be alive behind a slow link: its seat is held, as for a lost connection.
            forget(id, .lost)
            channel?.close(promise: nil)
        }
    }

    /// The connection is gone: its participant leaves, or its seat is held.
    func forget(_ id: RoomService.ConnectionID, _ ending: RoomService.Ending) {
        let (outbox, actions) = state.withLock { s in
            let actions = s.service.disconnected(id, ending, now: now)
            s.channels.removeValue(forKey: id)
            return (s.outboxes.removeValue(forKey: id), actions)
        }
        outbox?.finish()
        deliver(actions)
    }

    /// The rooms' audio levels since the last call, from the SFU: active speaker changes go out. Called every 200 ms.
    public func speakerTick() {
        let levels = forwarder.takeAudioLevels()
        deliver(state.withLock { $0.service.audioLevels(levels, now: now) })
    }

    /// Held seats whose time ran out are given up. Called about once a second.
    public func tick() {
        let (actions, expired) = state.withLock { s in
            let before = s.service.counters.expired
            let actions = s.service.tick(now: now)
            return (actions, s.service.counters.expired - before)
        }
        if expired > 0 { logger.info("room seats given up: their participants did not come back in time", metadata: ["seats": "\(expired)"]) }
        deliver(actions)
    }

    /// An operator removes a participant. False when there is no such participant in that room.
    public func remove(room: String, participant: String) -> Bool {
        guard let actions = state.withLock({ $0.service.remove(room: room, participant: participant, now: now) }) else { return false }
        logger.info("room participant removed by the operator", metadata: ["room": "\(room)", "participant": "\(participant)"])
        deliver(actions)
        return true
    }

    /// Called by the forwarder, possibly from inside a transport's close: handled on a task of its own.
    func publisherGone(room: String, participant: String) {
        Task { deliver(state.withLock { $0.service.publisherGone(room: room, participant: participant) }) }
    }

    /// Closes every connection with 1001 (going away): at shutdown, so the HTTP server need not wait for them.
    public func closeAll() {
        let ids = state.withLock { Array($0.outboxes.keys) }
        deliver(ids.map { .close($0, code: 1001, reason: "server shutting down") })
    }

    public var summaries: [RoomService.RoomSummary] { state.withLock { $0.service.summaries } }

    public func members(of room: String) -> [RoomService.ParticipantSummary]? { state.withLock { $0.service.members(of: room) } }

    public var counters: RoomService.Counters { state.withLock { $0.service.counters } }
}

/// Runs beside the HTTP server: finds active speakers every 200 ms, gives up held seats whose time ran out once a
/// second, and closes the rooms' WebSockets when shutdown begins.
public struct RoomHousekeeping: Service {
    let endpoint: RoomEndpoint

    public init(endpoint: RoomEndpoint) { self.endpoint = endpoint }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var n = 0
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(200))
                endpoint.speakerTick()
                n += 1
                if n % 5 == 0 { endpoint.tick() }
            }
        }
        endpoint.closeAll()
    }
}

/// Sees the close frames that pass, which hummingbird-websocket does not hand to the connection's handler: the first
/// one, whoever sent it, says how the connection ended. It sits after the frame decoder, before the connection's
/// own handler, and lets every frame through.
final class CloseWatcher: ChannelDuplexHandler, Sendable {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = WebSocketFrame
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    /// The first close frame: sent by the client or by the server, with its code (1005 when it had none).
    struct First: Sendable, Equatable {
        var byClient: Bool
        var code: UInt16
    }

    final class Box: Sendable {
        let first = Mutex<First?>(nil)
        var value: First? { first.withLock { $0 } }
        func record(_ frame: WebSocketFrame, byClient: Bool) {
            guard frame.opcode == .connectionClose else { return }
            var data = frame.unmaskedData
            let code = data.readInteger(as: UInt16.self) ?? 1005
            first.withLock { if $0 == nil { $0 = First(byClient: byClient, code: code) } }
        }
    }

    let box: Box

    init(box: Box) { self.box = box }

    /// Adds a watcher to an upgraded WebSocket's pipeline.
    static func install(on channel: any Channel) -> Box {
        let box = Box()
        channel.eventLoop.execute {
            let sync = channel.pipeline.syncOperations
            guard let decoder = try? sync.handler(type: ByteToMessageHandler<WebSocketFrameDecoder>.self) else { return }
            try? sync.addHandler(CloseWatcher(box: box), position: .after(decoder))
        }
        return box
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        box.record(unwrapInboundIn(data), byClient: true)
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        box.record(unwrapOutboundIn(data), byClient: false)
        context.write(data, promise: promise)
    }
}
