import Logging
import NIOCore
import RTMP
import StreamHub

/// One RTMP connection: handshake, chunk stream, and the hub-side effects of ``RTMPSession``'s actions.
///
/// Runs on its channel's event loop. A playing connection also has a task that takes frames from its
/// ``Viewer`` and writes them, waiting for each write to reach the socket: that wait is what lets the
/// viewer's bounded queue notice a slow reader.
final class RTMPConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Phase {
        case waitingC0C1
        case waitingC2
        case established
        case closing
    }

    let id: UInt64
    let hub: StreamHub
    let configuration: RTMPConfiguration
    let metrics: ProtocolMetrics
    var logger: Logger

    var phase = Phase.waitingC0C1
    var input: ByteBuffer?
    var decoder: ChunkDecoder
    var encoder = ChunkEncoder()
    var session = RTMPSession()
    var publisher: Publisher?
    var viewer: Viewer?

    var bytesReceived: UInt64 = 0
    var lastAcknowledged: UInt64 = 0
    var peerWindow: UInt64?
    var lastMediaAt = NIODeadline.now()
    var timers: [Scheduled<Void>] = []
    var idleCheck: Scheduled<Void>?

    init(id: UInt64, hub: StreamHub, configuration: RTMPConfiguration, metrics: ProtocolMetrics, logger: Logger) {
        self.id = id
        self.hub = hub
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        self.decoder = ChunkDecoder(maxMessageSize: configuration.maxMessageSize,
                                    maxBufferedBytes: configuration.maxBufferedBytes)
    }

    var peer = "?"

    func channelActive(context: ChannelHandlerContext) {
        peer = context.remoteAddress.map { "\($0)" } ?? "?"
        logger[metadataKey: "peer"] = "\(peer)"
        logger.debug("connected")
        metrics.connectionsTotal.increment()
        metrics.connections.increment()
        let loop = context.eventLoop.assumeIsolated()
        let timeout = TimeAmount.nanoseconds(Int64(configuration.handshakeTimeout.components.seconds) * 1_000_000_000)
        timers.append(loop.scheduleTask(in: timeout) { [self] in
            if !session.isConnected {
                close(context: context, reason: "no RTMP connect within \(configuration.handshakeTimeout)")
            }
        })
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        metrics.connections.decrement()
        teardown(reason: "connection closed")
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        close(context: context, reason: "socket error: \(error)")
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard phase != .closing else { return }
        bytesReceived += UInt64(bytes.readableBytes)
        metrics.bytesReceived.increment(by: bytes.readableBytes)
        if input == nil { input = bytes } else { input!.writeBuffer(&bytes) }
        var out = context.channel.allocator.buffer(capacity: 0)
        do {
            try process(context: context, out: &out)
        } catch let error as RTMPError {
            flushAndClose(context: context, out: out, reason: "protocol error: \(error)")
            return
        } catch {
            flushAndClose(context: context, out: out, reason: "\(error)")
            return
        }
        if let window = peerWindow, bytesReceived - lastAcknowledged >= window {
            lastAcknowledged = bytesReceived
            encoder.write(ProtocolControl.acknowledgement(sequenceNumber: UInt32(truncatingIfNeeded: bytesReceived)).message,
                          chunkStreamID: RTMPSession.ChunkStreams.control, to: &out)
        }
        if out.readableBytes > 0 { write(context: context, out) }
        if input?.readableBytes == 0 { input = nil }
    }

    func process(context: ChannelHandlerContext, out: inout ByteBuffer) throws {
        while phase != .closing, input != nil {
            switch phase {
            case .waitingC0C1:
                // Refuse a wrong version byte (an HTTP request, TLS, garbage) before waiting for 1537 bytes.
                if let c0 = input!.getInteger(at: input!.readerIndex, as: UInt8.self), c0 != Handshake.version {
                    throw RTMPError.unsupportedVersion(c0)
                }
                guard let c0c1 = input!.readSlice(length: 1 + Handshake.packetSize) else { return }
                var rng = SystemRandomNumberGenerator()
                let time = UInt32(truncatingIfNeeded: hub.now / 1_000_000)
                let (response, scheme) = try Handshake.serverResponse(c0c1: c0c1, time: time, using: &rng)
                out.writeImmutableBuffer(response)
                logger.debug("handshake", metadata: ["scheme": "\(scheme)"])
                phase = .waitingC2
            case .waitingC2:
                guard input!.readSlice(length: Handshake.packetSize) != nil else { return }
                phase = .established
            case .established:
                guard let message = try decoder.next(from: &input!) else { return }
                try handle(message, context: context, out: &out)
            case .closing:
                return
            }
        }
    }

    func handle(_ message: Message, context: ChannelHandlerContext, out: inout ByteBuffer) throws {
        if let control = try ProtocolControl(message) {
            switch control {
            case .windowAcknowledgementSize(let w):
                peerWindow = UInt64(max(w, 1024))
            case .userControl(.pingRequest(let t)):
                encoder.write(ProtocolControl.userControl(.pingResponse(timestamp: t)).message,
                              chunkStreamID: RTMPSession.ChunkStreams.control, to: &out)
            default:
                break  // Set Chunk Size and Abort were applied by the decoder
            }
            return
        }
        for action in try session.handle(message) {
            try perform(action, context: context, out: &out)
        }
    }

    func perform(_ action: RTMPSession.Action, context: ChannelHandlerContext, out: inout ByteBuffer) throws {
        switch action {
        case .send(let m, let csid):
            encoder.write(m, chunkStreamID: csid, to: &out)
        case .setOutgoingChunkSize(let size):
            encoder.chunkSize = size
        case .media(let kind, let ts, let payload):
            lastMediaAt = .now()
            publisher?.send(kind, timestamp: ts, payload: payload)
        case .requestPublish(let key, let query, let streamID):
            try requestPublish(key, query: query, streamID: streamID, context: context, out: &out)
        case .requestPlay(let key, let query, let streamID):
            if let why = hub.playbackRefusal(key, token: StreamHub.token(inQuery: query[...])) {
                logger.info("play refused", metadata: ["stream": "\(key)", "reason": "\(why)"])
                for a in session.playRefused(streamID: streamID, key: key, reason: why) { try perform(a, context: context, out: &out) }
                return
            }
            try requestPlay(key, streamID: streamID, context: context, out: &out)
        case .stopPublishing:
            stopPublishing(reason: "unpublished by client")
        case .stopPlaying:
            stopPlaying()
        case .close(let reason):
            flushAndClose(context: context, out: out, reason: reason)
            out.clear()
        }
    }

    func requestPublish(_ key: StreamKey, query: String, streamID: UInt32, context: ChannelHandlerContext,
                        out: inout ByteBuffer) throws {
        guard configuration.authentication.allows(stream: key.description, query: query) else {
            logger.warning("publish refused: bad or missing stream key", metadata: ["stream": "\(key)"])
            for a in session.publishRejected(streamID: streamID, code: "NetStream.Publish.Denied",
                                             description: "publishing \(key) needs a valid key (?key=...)") {
                try perform(a, context: context, out: &out)
            }
            return
        }
        do {
            publisher = try hub.publish(key, protocolName: "rtmp", peer: peer)
        } catch {
            logger.warning("publish refused: stream already published", metadata: ["stream": "\(key)"])
            for a in session.publishRejected(streamID: streamID, code: "NetStream.Publish.BadName",
                                             description: "\(key) is already being published") {
                try perform(a, context: context, out: &out)
            }
            return
        }
        logger[metadataKey: "stream"] = "\(key)"
        lastMediaAt = .now()
        scheduleIdleCheck(context: context)
        for a in session.publishAccepted(streamID: streamID, key: key) { try perform(a, context: context, out: &out) }
    }

    func requestPlay(_ key: StreamKey, streamID: UInt32, context: ChannelHandlerContext, out: inout ByteBuffer) throws {
        let viewer: Viewer
        do {
            viewer = try hub.subscribe(key, protocolName: "rtmp", peer: peer)
        } catch {
            logger.info("play refused: stream not found", metadata: ["stream": "\(key)"])
            for a in session.playRejected(streamID: streamID, key: key) { try perform(a, context: context, out: &out) }
            return
        }
        logger[metadataKey: "stream"] = "\(key)"
        logger.info("play started", metadata: ["viewer": "\(viewer.id)"])
        self.viewer = viewer
        for a in session.playAccepted(streamID: streamID, key: key) { try perform(a, context: context, out: &out) }
        // Media goes out from this event loop whenever the viewer has frames and the channel is writable:
        // no task switch per frame, and each frame's chunks are encoded once for every player.
        playStreamID = streamID
        ViewerPump.start(viewer, context: context, sendBuffer: hub.configuration.viewerSendBuffer,
                         watermark: .init(low: 16 << 10, high: 64 << 10)) { [self] in deliver(context: context) }
    }

    var playStreamID: UInt32 = 1

    /// Writes the viewer's queued frames as RTMP chunks, each frame chunked once for every player.
    func deliver(context: ChannelHandlerContext) {
        guard let viewer, phase != .closing else { return }
        let chunkSize = encoder.chunkSize
        let key = EncodingCache.Key(format: 2, a: playStreamID, b: UInt32(chunkSize))
        let wrote = ViewerPump.drain(viewer, context: context) { f in
            let (type, csid): (MessageType, UInt32) = switch f.kind {
            case .video: (.video, RTMPSession.ChunkStreams.video)
            case .audio: (.audio, RTMPSession.ChunkStreams.audio)
            case .metadata: (.dataAMF0, RTMPSession.ChunkStreams.data)
            }
            let bytes = f.encodings.encoding(key) {
                ChunkEncoder.encodeStandalone(Message(type: type, streamID: playStreamID, timestamp: f.timestamp, payload: f.payload),
                                              chunkStreamID: csid, chunkSize: chunkSize)
            }
            return (wrapOutboundOut(bytes), bytes.readableBytes)
        }
        guard let wrote else {
            logger.info("play ended: stream over", metadata: ["viewer": "\(viewer.id)"])
            close(context: context, reason: "stream ended")
            return
        }
        if wrote > 0 { metrics.bytesSent.increment(by: wrote) }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { deliver(context: context) }
        context.fireChannelWritabilityChanged()
    }

    /// Checks a quarter of the idle timeout apart whether the publisher has sent media lately.
    func scheduleIdleCheck(context: ChannelHandlerContext) {
        let idle = configuration.publishIdleTimeout
        let limit = TimeAmount.nanoseconds(Int64(idle.components.seconds) * 1_000_000_000 + idle.components.attoseconds / 1_000_000_000)
        idleCheck = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(max(limit.nanoseconds / 4, 50_000_000))) { [self] in
            guard publisher != nil else { return }
            if NIODeadline.now() - lastMediaAt > limit {
                close(context: context, reason: "publisher sent no media for \(idle)")
            } else {
                scheduleIdleCheck(context: context)
            }
        }
    }

    func stopPublishing(reason: String) {
        idleCheck?.cancel()
        idleCheck = nil
        if let publisher {
            publisher.unpublish()
            logger.info("publish ended", metadata: ["reason": "\(reason)"])
        }
        publisher = nil
    }

    func stopPlaying() {
        viewer?.close()
        viewer = nil
    }

    func teardown(reason: String) {
        for t in timers { t.cancel() }
        timers.removeAll()
        stopPublishing(reason: reason)
        stopPlaying()
    }

    func write(context: ChannelHandlerContext, _ buffer: ByteBuffer) {
        metrics.bytesSent.increment(by: buffer.readableBytes)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    func flushAndClose(context: ChannelHandlerContext, out: ByteBuffer, reason: String) {
        guard phase != .closing else { return }
        phase = .closing
        input = nil
        logger.info("closing", metadata: ["reason": "\(reason)"])
        teardown(reason: reason)
        let done = context.writeAndFlush(wrapOutboundOut(out))
        metrics.bytesSent.increment(by: out.readableBytes)
        done.whenComplete { [channel = context.channel] _ in channel.close(promise: nil) }
    }

    func close(context: ChannelHandlerContext, reason: String) {
        flushAndClose(context: context, out: context.channel.allocator.buffer(capacity: 0), reason: reason)
    }
}
