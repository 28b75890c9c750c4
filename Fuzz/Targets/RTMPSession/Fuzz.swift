import AMF0
import FuzzSupport
import Logging
import Metrics
import NIOCore
import NIOEmbedded
import RTMP
@testable import RTMPBridge
import StreamHub
import Synchronization

/// The RTMP connection handler and the hub as a state machine: three connections (each an `EmbeddedChannel` with the
/// server's `RTMPConnectionHandler`, all on one `StreamHub`) get handshakes, `connect`, `createStream`, `publish` and
/// `play` of two stream names, media, `deleteStream`, raw bytes of any kind, and close; time passes (the handshake
/// timeout, the hub's republish grace and its sweep). After every step:
/// - no viewer of a stream that ended: a viewer not closed is of a stream the hub still has;
/// - every published stream is held by a connection that is open, and a closed connection holds no publisher or
///   viewer;
/// - no more streams than names, and no viewer's queue over the hub's limit.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = UnsafeBufferPointer(start: data, count: size)[...]
    let time = Time()
    var hubConfiguration = HubConfiguration()
    hubConfiguration.republishGrace = .seconds(2)
    hubConfiguration.viewerMaxQueueBytes = 256 << 10
    let hub = StreamHub(configuration: hubConfiguration, clock: { time.nanoseconds.load(ordering: .relaxed) }, logger: quiet)
    var configuration = RTMPConfiguration()
    configuration.maxMessageSize = maxMessageSize
    configuration.maxBufferedBytes = 256 << 10
    configuration.handshakeTimeout = .seconds(3)
    var connections = (0..<3).map { _ in Connection(hub: hub, configuration: configuration) }
    let names = ["a", "b"]

    while let op = input.popFirst() {
        let c = Int(op >> 4) % connections.count
        let connection = connections[c]
        let name = names[Int(op >> 6) & 1]
        switch op & 15 {
        case 0, 1:
            // Raw bytes, anything at all.
            let length = Int(input.popFirst() ?? 0)
            connection.feed(Array(input.prefix(length)))
            input = input.dropFirst(length)
        case 2:
            connection.handshake()
        case 3:
            connection.command("connect", 1, object: .object(["app": .string("live"), "tcUrl": .string("rtmp://127.0.0.1/live")]))
        case 4:
            connection.command("createStream", 2)
        case 5:
            connection.command("publish", 3, [.string(name), .string("live")], stream: 1)
        case 6:
            connection.command("play", 4, [.string(name)], stream: 1)
        case 7, 8:
            // Media on stream 1: an AVC sequence header, a keyframe or an inter frame, or AAC, with a body from the
            // input.
            let kinds: [(MessageType, [UInt8])] = [(.video, [0x17, 0, 0, 0, 0]), (.video, [0x17, 1, 0, 0, 0]),
                                                   (.video, [0x27, 1, 0, 0, 0]), (.audio, [0xAF, 0])]
            let (type, head) = kinds[Int(op >> 6)]
            let length = Int(input.popFirst() ?? 0)
            connection.message(type, head + Array(input.prefix(length)), stream: 1, timestamp: connection.nextTimestamp())
            input = input.dropFirst(length)
        case 9:
            connection.command("deleteStream", 5, [.number(1)])
        case 10:
            connection.command("FCUnpublish", 6, [.string(name)])
        case 11:
            // The connection goes; a new one takes its place.
            connection.close()
            invariants(hub, connections)
            connections[c] = Connection(hub: hub, configuration: configuration)
        case 12:
            // Time passes: timers on every connection's loop, and the hub's sweep as the server runs it.
            let step = Int64(op >> 4) * 250_000_000 + 100_000_000
            time.nanoseconds.add(UInt64(step), ordering: .relaxed)
            for connection in connections { connection.advance(by: .nanoseconds(step)) }
            hub.sweep()
        default:
            // A viewer reads what is queued (as its socket would), or does not.
            connection.read()
        }
        invariants(hub, connections)
    }
    for connection in connections { connection.close() }
    invariants(hub, connections)
    return 0
}

let maxMessageSize = 64 << 10
let quiet = Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() })

final class Time: Sendable {
    let nanoseconds = Atomic<UInt64>(1_000_000_000)
}

/// One client connection as the server sees it.
final class Connection {
    let channel: EmbeddedChannel
    let handler: RTMPConnectionHandler
    var encoder = ChunkEncoder()
    var timestamp: UInt32 = 0
    var closed = false

    init(hub: StreamHub, configuration: RTMPConfiguration) {
        handler = RTMPConnectionHandler(id: hub.makeID(), hub: hub, configuration: configuration,
                                        metrics: ProtocolMetrics(protocolName: "rtmp", factory: NOOPMetricsHandler.instance),
                                        logger: quiet)
        channel = EmbeddedChannel(handler: handler)
        // Connected as a socket from a client would be (active, with a remote address).
        _ = try? channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 50_000)).wait()
    }

    var isOpen: Bool { !closed && channel.isActive }

    func feed(_ bytes: [UInt8]) {
        guard isOpen else { return }
        try? channel.writeInbound(channel.allocator.buffer(bytes: bytes))
        channel.embeddedEventLoop.run()
        drain()
    }

    /// C0+C1 (a plain C1) and C2.
    func handshake() {
        feed([3] + [UInt8](repeating: 0, count: 1536))
        feed([UInt8](repeating: 0, count: 1536))
    }

    func command(_ name: String, _ transaction: Double, object: AMF0Value = .null, _ arguments: [AMF0Value] = [], stream: UInt32 = 0) {
        var out = channel.allocator.buffer(capacity: 256)
        encoder.write(Command(name: name, transactionID: transaction, object: object, arguments: arguments).message(streamID: stream),
                      chunkStreamID: 3, to: &out)
        feed(Array(out.readableBytesView))
    }

    func message(_ type: MessageType, _ body: [UInt8], stream: UInt32, timestamp: UInt32) {
        var out = channel.allocator.buffer(capacity: body.count + 32)
        encoder.write(Message(type: type, streamID: stream, timestamp: timestamp, payload: channel.allocator.buffer(bytes: body)),
                      chunkStreamID: type == .video ? 6 : 4, to: &out)
        feed(Array(out.readableBytesView))
    }

    func nextTimestamp() -> UInt32 {
        timestamp &+= 33
        return timestamp
    }

    func advance(by amount: TimeAmount) {
        guard !closed else { return }
        channel.embeddedEventLoop.advanceTime(by: amount)
        drain()
    }

    /// What the server wrote, taken off the channel (as a socket would), so that the viewer's pump goes on.
    func read() {
        guard !closed else { return }
        channel.embeddedEventLoop.run()
        drain()
    }

    func drain() {
        while (try? channel.readOutbound(as: ByteBuffer.self)) ?? nil != nil {}
    }

    func close() {
        guard !closed else { return }
        closed = true
        _ = try? channel.finish(acceptAlreadyClosed: true)
    }
}

func invariants(_ hub: StreamHub, _ connections: [Connection]) {
    let streams = hub.snapshot()
    check(streams.count <= 2, "\(streams.count) streams from two names")
    for s in streams where s.published {
        let key = StreamKey(app: s.app, stream: s.stream)
        check(connections.contains { $0.isOpen && $0.handler.publisher?.source.key == key },
              "\(s.app)/\(s.stream) is published, and no open connection publishes it")
    }
    for connection in connections {
        if !connection.isOpen {
            check(connection.handler.publisher == nil, "a closed connection still publishes")
            check(connection.handler.viewer == nil, "a closed connection still has a viewer")
        }
        if let viewer = connection.handler.viewer, !viewer.isClosed {
            check(hub.source(viewer.key) != nil, "a viewer of \(viewer.key), a stream that ended")
            // The queue's bound, plus what it never drops: one configuration frame of each kind (metadata, AVC and
            // AAC sequence headers), each at most a message.
            let bound = hub.configuration.viewerMaxQueueBytes + 3 * maxMessageSize
            check(viewer.stats.queuedBytes <= bound, "a viewer's queue holds \(viewer.stats.queuedBytes) bytes, over \(bound)")
        }
    }
}
