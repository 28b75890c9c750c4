import AMF0
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RTMP
import StreamHub

/// Where a push goes: `rtmp://HOST[:PORT]/APP[/MORE]/KEY`. The last path segment (with any query) is the stream key
/// the publish names, the rest the application, as YouTube, Twitch and every RTMP server read such URLs.
public struct RTMPPushTarget: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var app: String
    public var key: String

    public init(url: String) throws(PushError) {
        guard let c = URLComponents(string: url), let scheme = c.scheme?.lowercased() else { throw .badURL("\(url) is not a URL") }
        guard scheme == "rtmp" else {
            throw .badURL(scheme == "rtmps" ? "rtmps (RTMP over TLS) is not supported: use rtmp://" : "the URL must start with rtmp://, not \(scheme)://")
        }
        guard let host = c.host, !host.isEmpty else { throw .badURL("the URL has no host") }
        let port = c.port ?? 1935
        guard (1...65535).contains(port) else { throw .badURL("port \(port) is out of range") }
        var path = c.percentEncodedPath.split(separator: "/").map(String.init)
        guard path.count >= 2 else { throw .badURL("the URL needs an application and a stream key: rtmp://\(host)/APP/KEY") }
        var key = path.removeLast()
        if let q = c.percentEncodedQuery { key += "?\(q)" }
        (self.host, self.port, self.app, self.key) = (host, port, path.joined(separator: "/"), key)
    }

    public var tcURL: String { "rtmp://\(host):\(port)/\(app)" }
    /// The URL without its stream key (a secret), for logs and the API.
    public var description: String { "rtmp://\(host):\(port)/\(app)/…" }
}

public enum PushError: Error, Equatable, Sendable, CustomStringConvertible {
    case badURL(String)
    case notFound(String)
    case tooMany(Int)

    public var description: String {
        switch self {
        case .badURL(let why): "bad push URL: \(why)"
        case .notFound(let id): "no push \(id)"
        case .tooMany(let n): "at most \(n) pushes per stream"
        }
    }
}

/// One hub stream published to another RTMP server (LiveSwarm as an RTMP client): it connects, publishes the key,
/// and sends every frame the hub has for its viewers, from the sequence headers and cached GOP on. When the
/// connection fails or the server goes away it tries again after 1 s, doubling up to 30 s; while the stream is not
/// live it waits for it. Stops on ``stop()``.
public final class RTMPPush: Sendable {
    public enum State: String, Sendable, Codable {
        /// The stream is not live: waiting for a publisher.
        case waiting
        case connecting
        case publishing
        /// The last attempt failed; the next is scheduled.
        case retrying
        case stopped
    }

    public struct Snapshot: Sendable, Codable, Equatable {
        public var id: String
        public var stream: String
        public var target: String
        public var state: State
        public var bytesSent: Int
        public var framesSent: Int
        public var connects: Int
        public var failures: Int
        public var lastError: String?
        /// Seconds until the next attempt, when retrying.
        public var retryIn: Double?
    }

    struct Status {
        var state = State.waiting
        var bytes = 0
        var frames = 0
        var connects = 0
        var failures = 0
        var lastError: String?
        var retryAt: ContinuousClock.Instant?
        var channel: (any Channel)?
        var stopped = false
    }

    public let id: String
    public let stream: StreamKey
    public let target: RTMPPushTarget
    let hub: StreamHub
    let group: any EventLoopGroup
    let logger: Logger
    let status = NIOLockedValueBox(Status())
    let task = NIOLockedValueBox<Task<Void, Never>?>(nil)

    static let maxBackoff = 30.0
    static let timeout = TimeAmount.seconds(10)

    init(id: String, stream: StreamKey, target: RTMPPushTarget, hub: StreamHub, group: any EventLoopGroup, logger: Logger) {
        (self.id, self.stream, self.target, self.hub, self.group) = (id, stream, target, hub, group)
        var l = logger
        l[metadataKey: "push"] = "\(id)"
        l[metadataKey: "stream"] = "\(stream)"
        self.logger = l
    }

    public var snapshot: Snapshot {
        status.withLockedValue { s in
            Snapshot(id: id, stream: stream.description, target: target.description, state: s.state, bytesSent: s.bytes,
                     framesSent: s.frames, connects: s.connects, failures: s.failures, lastError: s.lastError,
                     retryIn: s.retryAt.map { max(0, ($0 - .now) / .seconds(1)) })
        }
    }

    func start() {
        task.withLockedValue { $0 = Task { await self.run() } }
    }

    public func stop() {
        let channel = status.withLockedValue { s -> (any Channel)? in
            s.stopped = true
            s.state = .stopped
            return s.channel
        }
        channel?.close(promise: nil)
        task.withLockedValue { $0?.cancel() }
    }

    var stopped: Bool { status.withLockedValue { $0.stopped } }

    func run() async {
        var backoff = 1.0
        logger.info("push started", metadata: ["target": "\(target)"])
        while !stopped, !Task.isCancelled {
            guard hub.source(stream)?.isPublished == true else {
                status.withLockedValue { if !$0.stopped { $0.state = .waiting } }
                try? await Task.sleep(for: .milliseconds(500))
                continue
            }
            status.withLockedValue { s in
                s.state = .connecting
                s.connects += 1
                s.retryAt = nil
            }
            let began = ContinuousClock.now
            do {
                try await pushOnce()
                // The stream ended: the remote publish ends with it, and the next begins when it is live again.
                logger.info("push: the stream ended")
                backoff = 1
                continue
            } catch {
                if stopped { break }
                if ContinuousClock.now - began > .seconds(30) { backoff = 1 }
                let wait = backoff
                status.withLockedValue { s in
                    s.failures += 1
                    s.lastError = "\(error)"
                    s.state = .retrying
                    s.retryAt = .now + .seconds(wait)
                }
                logger.warning("push failed; trying again", metadata: ["target": "\(target)", "error": "\(error)", "in": "\(wait) s"])
                try? await Task.sleep(for: .seconds(wait))
                backoff = min(backoff * 2, Self.maxBackoff)
            }
        }
        status.withLockedValue { $0.state = .stopped }
        logger.info("push stopped", metadata: ["target": "\(target)"])
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    /// One connection: handshake, connect, createStream, publish, then frames until the stream or the connection ends.
    func pushOnce() async throws {
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(.seconds(5))
                .connect(host: target.host, port: target.port) { channel in
                    channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
                }
        } catch {
            let text = "\(error)"
            let reason = text.contains("refused") ? "connection refused" : text.contains("imeout") ? "timed out" : text
            throw Failure("cannot connect to \(target.host):\(target.port): \(reason)")
        }
        status.withLockedValue { $0.channel = channel.channel }
        defer {
            status.withLockedValue { $0.channel = nil }
            channel.channel.close(promise: nil)
        }
        try await channel.executeThenClose { inbound, outbound in
            var reader = Reader(inbound: inbound.makeAsyncIterator())
            var encoder = ChunkEncoder()
            func send(_ m: Message, csid: UInt32 = 3) async throws {
                var out = ByteBuffer()
                encoder.write(m, chunkStreamID: csid, to: &out)
                try await outbound.write(out)
            }
            // Plain handshake (RTMP 5.2): C0+C1, then S0+S1+S2, and S1 echoed as C2.
            var rng = SystemRandomNumberGenerator()
            try await outbound.write(Handshake.clientHello(time: 0, using: &rng))
            let s0s1s2 = try await reader.bytes(1 + 2 * Handshake.packetSize)
            try await outbound.write(s0s1s2.getSlice(at: 1, length: Handshake.packetSize)!)
            try await send(ProtocolControl.setChunkSize(4096).message, csid: 2)
            encoder.chunkSize = 4096
            try await send(Command(name: "connect", transactionID: 1, object: .object([
                "app": .string(target.app), "type": .string("nonprivate"), "flashVer": .string("FMLE/3.0 (compatible; LiveSwarm)"),
                "tcUrl": .string(target.tcURL),
            ])).message(streamID: 0))
            try await reader.expectResult(1, "connect")
            try await send(Command(name: "releaseStream", transactionID: 2, arguments: [.string(target.key)]).message(streamID: 0))
            try await send(Command(name: "FCPublish", transactionID: 3, arguments: [.string(target.key)]).message(streamID: 0))
            try await send(Command(name: "createStream", transactionID: 4).message(streamID: 0))
            let created = try await reader.expectResult(4, "createStream")
            let streamID = UInt32(created.arguments.first?.numberValue ?? 1)
            try await send(Command(name: "publish", transactionID: 5, arguments: [.string(target.key), .string("live")]).message(streamID: streamID),
                           csid: 4)
            let code = try await reader.status()
            guard code == "NetStream.Publish.Start" else { throw Failure("the server refused the publish: \(code)") }
            logger.info("push publishing", metadata: ["target": "\(target)"])
            status.withLockedValue { $0.state = .publishing }

            // Frames go out from a task of their own; this one reads the server's messages (acknowledgements, pings)
            // and drops them. The stream's end closes the connection; the server's end ends the frames.
            let viewer = try hub.subscribe(stream, protocolName: "push", peer: "\(target.host):\(target.port)")
            let streamEnded = NIOLockedValueBox(false), closedByUs = NIOLockedValueBox(false)
            let (ch, first) = (channel.channel, encoder)
            let writer = Task {
                var encoder = first
                do {
                    while let frames = await viewer.next() {
                        var out = ByteBuffer()
                        for f in frames {
                            let (type, csid): (MessageType, UInt32) = switch f.kind {
                            case .video: (.video, 6)
                            case .audio: (.audio, 7)
                            case .metadata: (.dataAMF0, 5)
                            }
                            encoder.write(Message(type: type, streamID: streamID, timestamp: f.timestamp, payload: f.payload),
                                          chunkStreamID: csid, to: &out)
                        }
                        let n = out.readableBytes
                        try await outbound.write(out)
                        self.status.withLockedValue { s in
                            s.bytes += n
                            s.frames += frames.count
                        }
                    }
                    streamEnded.withLockedValue { $0 = !closedByUs.withLockedValue { $0 } }
                } catch {}
                ch.close(promise: nil)
            }
            do { try await reader.drain() } catch {}
            closedByUs.withLockedValue { $0 = true }
            viewer.close()
            await writer.value
            if !streamEnded.withLockedValue({ $0 }) { throw Failure("the server closed the connection") }
        }
    }

    /// The server's side of the connection, read as RTMP messages.
    struct Reader {
        var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
        var pending = ByteBuffer()
        var decoder = ChunkDecoder()

        mutating func more() async throws {
            guard var b = try await inbound.next() else { throw Failure("the server closed the connection") }
            pending.writeBuffer(&b)
        }

        mutating func bytes(_ n: Int) async throws -> ByteBuffer {
            while pending.readableBytes < n { try await more() }
            return pending.readSlice(length: n)!
        }

        mutating func message() async throws -> Message {
            while true {
                if let m = try decoder.next(from: &pending) {
                    if m.type == .setChunkSize, let control = try? ProtocolControl(m), case .setChunkSize = control {
                        // The decoder follows the server's chunk size itself.
                    }
                    return m
                }
                try await more()
            }
        }

        /// The `_result` of transaction `id`; an `_error` throws with its description.
        @discardableResult
        mutating func expectResult(_ id: Double, _ what: String) async throws -> Command {
            while true {
                let m = try await message()
                guard m.type == .commandAMF0, let c = try? Command(m), c.transactionID == id else { continue }
                if c.name == "_result" { return c }
                let why = c.arguments.first?.objectValue?["description"]?.stringValue ?? c.arguments.first?.objectValue?["code"]?.stringValue ?? c.name
                throw Failure("\(what) refused: \(why)")
            }
        }

        /// The code of the next onStatus.
        mutating func status() async throws -> String {
            while true {
                let m = try await message()
                guard m.type == .commandAMF0, let c = try? Command(m), c.name == "onStatus" else { continue }
                return c.arguments.first?.objectValue?["code"]?.stringValue ?? "onStatus without a code"
            }
        }

        mutating func drain() async throws {
            while true {
                _ = try await message()
            }
        }
    }
}

/// The pushes of every stream: made by the API or the config, listed and stopped by id.
public final class PushManager: Sendable {
    let hub: StreamHub
    let group: any EventLoopGroup
    let logger: Logger
    let pushes = NIOLockedValueBox<[String: RTMPPush]>([:])
    let counter = NIOLockedValueBox(0)
    public static let maxPerStream = 8

    public init(hub: StreamHub, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger) {
        (self.hub, self.group, self.logger) = (hub, group, logger)
    }

    /// Starts pushing `stream` to `url`; the stream need not be live yet.
    @discardableResult
    public func start(stream: StreamKey, url: String) throws(PushError) -> RTMPPush {
        let target = try RTMPPushTarget(url: url)
        let push = pushes.withLockedValue { (all: inout [String: RTMPPush]) -> RTMPPush? in
            guard all.values.filter({ $0.stream == stream }).count < Self.maxPerStream else { return nil }
            let n = counter.withLockedValue { $0 += 1; return $0 }
            let p = RTMPPush(id: "p\(n)", stream: stream, target: target, hub: hub, group: group, logger: logger)
            all[p.id] = p
            return p
        }
        guard let push else { throw .tooMany(Self.maxPerStream) }
        push.start()
        return push
    }

    public func stop(id: String) throws(PushError) {
        guard let p = pushes.withLockedValue({ $0.removeValue(forKey: id) }) else { throw .notFound(id) }
        p.stop()
    }

    public func snapshot(stream: StreamKey? = nil) -> [RTMPPush.Snapshot] {
        pushes.withLockedValue { Array($0.values) }.filter { stream == nil || $0.stream == stream }.map(\.snapshot).sorted { $0.id < $1.id }
    }

    public func stopAll() {
        for p in pushes.withLockedValue({ all in defer { all = [:] }; return Array(all.values) }) { p.stop() }
    }
}
