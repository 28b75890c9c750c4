import Logging
import NIOConcurrencyHelpers
import NIOCore
import RTP
import StreamHub

/// The video of a hub stream (RTMP-published) to one WebRTC viewer: H.264 access units from the viewer's hub
/// queue, packetized (RFC 6184), numbered in this viewer's own RTP sequence and clock, protected and sent.
///
/// - **Instant start.** The hub hands a new viewer the cached GOP from its keyframe. It is sent at once from the
///   keyframe, then paced at ``Options/catchUpSpeed`` times real time with timestamps compressed by the same
///   factor, so the browser decodes every frame (no smearing) and its jitter buffer sees packets arriving as their
///   timestamps say. Once a frame is at the live edge, time runs at its normal rate.
/// - **Republish.** The hub keeps its timeline continuous across a publisher's restart and keeps the viewer, so
///   the SSRC, sequence numbers and timestamps simply go on; the first frame sent after it is a keyframe with the
///   new session's parameter sets.
/// - **Repair.** The last 512 packets are kept (sharing the frames' payload bytes) to answer NACKs, on the RTX
///   stream when the viewer negotiated one.
final class HubVideoSender: @unchecked Sendable {
    struct Options: Sendable {
        /// How much faster than real time the cached GOP is sent to a new viewer.
        var catchUpSpeed = 4.0
        /// A frame within this many milliseconds of the newest frame from the publisher is "at the live edge".
        var liveEdgeSlack: UInt32 = 100
        var maxPayload = H264RTP.defaultMaxPayload
    }

    let viewer: Viewer
    let source: Source
    let transport: WebRTCTransport
    let payloadType: UInt8
    let ssrc: UInt32
    let rtx: (payloadType: UInt8, ssrc: UInt32)?
    let options: Options
    let eventLoop: any EventLoop
    /// The hub's monotonic clock (ns): frames' `receivedAt` is on it.
    let now: @Sendable () -> UInt64
    let meter: BridgeMeter
    let warnings: BridgeWarnings
    let logger: Logger

    let lock = NIOLock()
    var state: State
    var endedHandler: (@Sendable () -> Void)?

    /// Called once when the hub ends the viewer (the stream is gone).
    func onEnded(_ handler: @escaping @Sendable () -> Void) { lock.withLock { endedHandler = handler } }

    struct State {
        var sequence = UInt16.random(in: 0...UInt16.max)
        var rtxSequence = UInt16.random(in: 0...UInt16.max)
        var clock: CatchUpClock
        var gate = PictureGate()
        var configuration: H264Frame.Configuration?
        var pending: MediaFrame?
        var wakeUp: Scheduled<Void>?
        var history: [(sequence: UInt16, timestamp: UInt32, marker: Bool, payload: ByteBuffer)?]
        /// The last picture sent at normal speed: its RTP time and presentation time (ms), for sender reports.
        var lastLive: (rtp: UInt32, ptsMs: Int64)?
        var stats = Stats()
        var closed = false
    }

    struct Stats: Sendable, Codable {
        var framesSent = 0
        var packetsSent = 0
        var bytesSent = 0
        var keyframesSent = 0
        /// Pictures not sent: broken, before a usable configuration or keyframe, or (B-frames) needing reordering.
        var framesDropped = 0
        var nonReferenceDropped = 0
        /// Pictures left out because reference B-frames made the viewer fall back to keyframes only.
        var reorderDropped = 0
        var retransmitted = 0
        var pictureLossRequests = 0
        /// Milliseconds from the hub subscription (DTLS up) to the first picture sent, and to the live edge.
        var firstFrameAfterMs: Double?
        var caughtUpAfterMs: Double?
        /// How far the first picture (the cached keyframe) was behind the live edge.
        var firstPictureBehindMs: Int64?
    }

    static let historySize = 512

    init(viewer: Viewer, source: Source, transport: WebRTCTransport, payloadType: UInt8, ssrc: UInt32,
         rtx: (payloadType: UInt8, ssrc: UInt32)?, options: Options, now: @escaping @Sendable () -> UInt64,
         meter: BridgeMeter, warnings: BridgeWarnings, logger: Logger) {
        (self.viewer, self.source, self.transport, self.payloadType, self.ssrc, self.rtx) = (viewer, source, transport, payloadType, ssrc, rtx)
        (self.options, self.now, self.meter, self.warnings, self.logger) = (options, now, meter, warnings, logger)
        eventLoop = transport.eventLoop
        state = State(clock: CatchUpClock(speed: options.catchUpSpeed, slack: Int64(options.liveEdgeSlack), start: .random(in: 0...UInt32.max)),
                      history: Array(repeating: nil, count: Self.historySize))
    }

    /// Starts delivery: frames are sent from the transport's event loop as the hub queues them.
    func start() {
        viewer.onReadable { [weak self] in
            guard let self else { return }
            eventLoop.execute { self.drain() }
        }
    }

    func stop() {
        lock.withLock {
            state.closed = true
            state.wakeUp?.cancel()
            state.pending = nil
        }
        viewer.close()
    }

    var stats: Stats { lock.withLock { state.stats } }

    /// Sends what is due; a frame of the cached GOP not due yet waits for a timer.
    func drain() {
        while true {
            let (blocked, pending) = lock.withLock { () -> (Bool, MediaFrame?) in
                if state.closed || state.wakeUp != nil { return (true, nil) }
                defer { state.pending = nil }
                return (false, state.pending)
            }
            if blocked { return }
            let frame: MediaFrame
            if let pending {
                frame = pending
            } else {
                guard let batch = viewer.take(maxBytes: 1) else {
                    // The hub ended the stream (its publisher did not come back in time, or the server stops).
                    let ended = lock.withLock { () -> (@Sendable () -> Void)? in
                        defer { endedHandler = nil }
                        return endedHandler
                    }
                    ended?()
                    return
                }
                guard let first = batch.first else { return }
                frame = first
            }
            guard frame.kind == .video else { continue }
            let t = now()
            if let due = dueTime(frame), due > t {
                lock.withLock {
                    state.pending = frame
                    state.wakeUp = eventLoop.scheduleTask(in: .nanoseconds(Int64(due - t))) { [weak self] in
                        guard let self else { return }
                        lock.withLock { state.wakeUp = nil }
                        drain()
                    }
                }
                return
            }
            send(frame)
        }
    }

    /// When a frame of the cached GOP is due (hub ns), nil when it goes at once.
    func dueTime(_ frame: MediaFrame) -> UInt64? {
        lock.withLock { state.clock.due(Int64(frame.timestamp)) }
    }

    /// Logged once per stream, not once per viewer: every viewer of a stream meets the same problems.
    func report(_ failure: H264Frame.Failure, session: Int) {
        if warnings.note(stream: source.key.description, session: session, failure.description) {
            logger.warning("RTMP to WebRTC: \(failure)", metadata: ["stream": "\(source.key)"])
        }
    }

    func send(_ frame: MediaFrame) {
        let parsed: H264Frame.Parsed
        do { parsed = try H264Frame.parse(frame) } catch {
            report(error, session: frame.session)
            lock.withLock {
                if case .badConfiguration = error { state.gate.configured(valid: false) }
                state.stats.framesDropped += 1
            }
            return
        }
        switch parsed {
        case .ignored:
            return
        case .configuration(let c):
            lock.withLock {
                if state.configuration != c || !state.gate.configured { state.gate.configured(valid: true) }
                state.configuration = c
            }
        case .picture(let cts, let body):
            sendPicture(frame, compositionTime: cts, body: body)
        }
    }

    func sendPicture(_ frame: MediaFrame, compositionTime cts: Int32, body: ByteBuffer) {
        guard let configuration = lock.withLock({ state.gate.configured ? state.configuration : nil }) else {
            lock.withLock { state.stats.framesDropped += 1 }
            return
        }
        let payloads: ByteBuffer
        do {
            payloads = try H264Frame.payloads(frame, body: body, nalLengthSize: configuration.nalLengthSize, maxPayload: options.maxPayload)
        } catch {
            report(error, session: frame.session)
            lock.withLock {
                state.stats.framesDropped += 1
                state.gate.broken()
            }
            return
        }
        let sendNow = now()
        let liveEdge = Int64(source.lastTimestamp)
        let keyframe = frame.isKeyframe
        var counted = false
        let outcome = lock.withLock { () -> Result<UInt32, PictureGate.Reason> in
            let verdict = state.gate.admit(session: frame.session, keyframe: keyframe, dts: Int64(frame.timestamp),
                                           compositionTime: cts, nonReference: H264Frame.isNonReference(payloads))
            if case .drop(let why) = verdict {
                state.stats.framesDropped += 1
                if why == .nonReference { state.stats.nonReferenceDropped += 1 }
                if why == .reordered || why == .keyframesOnly { state.stats.reorderDropped += 1 }
                return .failure(why)
            }
            // Server-added delay is measured on live pictures only: those of the cached GOP, and the one that reaches
            // the live edge after it, are late on purpose.
            counted = state.clock.anchor != nil && !state.clock.isCatchingUp && frame.receivedAt >= viewer.joinedAt
            let (ts, event) = state.clock.stamp(dts: Int64(frame.timestamp), cts: cts, liveEdge: liveEdge, now: sendNow)
            switch event {
            case .started(let behind)?:
                state.stats.firstFrameAfterMs = Double(sendNow &- viewer.joinedAt) / 1e6
                state.stats.firstPictureBehindMs = liveEdge - Int64(frame.timestamp)
                logger.debug("first picture", metadata: ["stream": "\(source.key)", "viewer": "\(viewer.id)", "keyframe": "\(keyframe)",
                                                         "behindLiveEdgeMs": "\(liveEdge - Int64(frame.timestamp))", "catchUp": "\(behind)"])
            case .caughtUp?:
                state.stats.caughtUpAfterMs = Double(sendNow &- viewer.joinedAt) / 1e6
                logger.debug("caught up with the live edge", metadata: ["stream": "\(source.key)", "viewer": "\(viewer.id)",
                                                                        "afterMs": "\(state.stats.caughtUpAfterMs!)"])
            case nil: break
            }
            // Sender reports relate RTP time to stream time; while catching up, time is compressed, so only
            // pictures sent at normal speed say how.
            if state.clock.anchor != nil && !state.clock.isCatchingUp { state.lastLive = (ts, Int64(frame.timestamp) + Int64(cts)) }
            return .success(ts)
        }
        let timestamp: UInt32
        switch outcome {
        case .success(let ts):
            timestamp = ts
        case .failure(.reordered):
            report(.reordered, session: frame.session)
            return
        case .failure(.nonReference):
            report(.nonReferenceDropped, session: frame.session)
            return
        case .failure:
            return
        }
        var all: [ByteBufferView] = []
        if keyframe && !H264Frame.hasParameterSets(payloads) {
            for p in H264RTP.packetize([[UInt8]](), parameterSets: configuration.parameterSets, maxPayload: options.maxPayload) {
                all.append(ByteBuffer(bytes: p).readableBytesView)
            }
        }
        H264Frame.forEach(payloads) { all.append($0) }
        let first = lock.withLock { () -> UInt16 in
            let first = state.sequence
            for (i, p) in all.enumerated() {
                let seq = state.sequence
                state.sequence &+= 1
                state.history[Int(seq) % Self.historySize] = (seq, timestamp, i == all.count - 1, ByteBuffer(p))
                state.stats.packetsSent += 1
                state.stats.bytesSent += p.count
            }
            state.stats.framesSent += 1
            if keyframe { state.stats.keyframesSent += 1 }
            return first
        }
        // Each payload is encrypted straight from the hub's frame into the viewer's datagram, and the frame's
        // datagrams go to the socket together (one hop to its event loop, one sendmmsg).
        var datagrams: [ByteBuffer] = []
        datagrams.reserveCapacity(all.count)
        for (i, p) in all.enumerated() {
            let marker = i == all.count - 1
            let datagram = withUnsafeTemporaryAllocation(byteCount: 12, alignment: 4) { h in
                h[0] = 0x80
                h[1] = (marker ? 0x80 : 0) | payloadType
                h.storeBytes(of: (first &+ UInt16(truncatingIfNeeded: i)).bigEndian, toByteOffset: 2, as: UInt16.self)
                h.storeBytes(of: timestamp.bigEndian, toByteOffset: 4, as: UInt32.self)
                h.storeBytes(of: ssrc.bigEndian, toByteOffset: 8, as: UInt32.self)
                return p.withContiguousStorageIfAvailable { payload in
                    transport.protectRTP(header: UnsafeRawBufferPointer(h), payload: UnsafeRawBufferPointer(payload))
                } ?? nil
            }
            if let datagram { datagrams.append(datagram) }
        }
        transport.send(datagrams: datagrams)
        // Server-added delay: the frame complete in the hub to its packets handed to the socket (one call: the last
        // packet with the first).
        if counted { meter.record(nanoseconds: now() &- frame.receivedAt) }
    }

    func packet(sequence: UInt16, timestamp: UInt32, marker: Bool, payload: some Collection<UInt8>,
                on stream: (payloadType: UInt8, ssrc: UInt32)? = nil, originalSequence: UInt16? = nil) -> [UInt8] {
        let (pt, s) = stream ?? (payloadType, ssrc)
        var out: [UInt8] = []
        out.reserveCapacity(12 + 2 + payload.count + 16)
        out += [0x80, (marker ? 0x80 : 0) | pt, UInt8(sequence >> 8), UInt8(sequence & 0xFF)]
        out += [UInt8(timestamp >> 24), UInt8(timestamp >> 16 & 0xFF), UInt8(timestamp >> 8 & 0xFF), UInt8(timestamp & 0xFF)]
        out += [UInt8(s >> 24), UInt8(s >> 16 & 0xFF), UInt8(s >> 8 & 0xFF), UInt8(s & 0xFF)]
        if let o = originalSequence { out += [UInt8(o >> 8), UInt8(o & 0xFF)] }
        out += payload
        return out
    }

    /// An SR relating the last live picture's RTP time to `ntp` of its presentation time (ms); nil while the
    /// viewer is still catching up.
    func senderReport(ntp: (Double) -> UInt64) -> SenderReport? {
        lock.withLock {
            guard let last = state.lastLive else { return nil }
            return SenderReport(ssrc: ssrc, ntpTimestamp: ntp(Double(last.ptsMs)), rtpTimestamp: last.rtp,
                                packetCount: UInt32(truncatingIfNeeded: state.stats.packetsSent),
                                octetCount: UInt32(truncatingIfNeeded: state.stats.bytesSent))
        }
    }

    /// A viewer's NACK: the packets still kept go again, on the RTX stream when negotiated (RFC 4588).
    func retransmit(_ lost: [UInt16]) {
        let packets = lock.withLock { () -> [[UInt8]] in
            lost.compactMap { seq in
                guard let e = state.history[Int(seq) % Self.historySize], e.sequence == seq else { return nil }
                state.stats.retransmitted += 1
                guard let rtx else { return packet(sequence: seq, timestamp: e.timestamp, marker: e.marker, payload: e.payload.readableBytesView) }
                let r = state.rtxSequence
                state.rtxSequence &+= 1
                return packet(sequence: r, timestamp: e.timestamp, marker: e.marker, payload: e.payload.readableBytesView,
                              on: rtx, originalSequence: seq)
            }
        }
        transport.send(rtp: packets)
    }

    /// RTCP from the viewer: NACKs are answered; a picture loss request is counted (an RTMP encoder cannot be
    /// asked for a keyframe; the viewer's NACKs repair loss instead).
    func viewerRTCP(_ packet: [UInt8]) {
        guard let packets = try? RTCPPacket.parseCompound(packet) else { return }
        for p in packets {
            switch p {
            case .nack(let nack) where nack.mediaSSRC == ssrc:
                retransmit(nack.lost)
            case .pictureLoss, .fullIntraRequest:
                lock.withLock { state.stats.pictureLossRequests += 1 }
            default:
                continue
            }
        }
    }
}

/// Server-added video delay of the bridge, over its last samples: from a frame complete in the hub to its RTP
/// packets handed to the socket (after SRTP; one call per viewer and frame, so the last packet with the first).
public final class BridgeMeter: @unchecked Sendable {
    public struct Summary: Sendable, Codable, Equatable {
        public var samples: Int
        public var p50Ms: Double?
        public var p99Ms: Double?
        public var maxMs: Double?
    }

    let lock = NIOLock()
    var samples: [UInt64] = []
    var next = 0
    var total = 0
    static let window = 8192

    public init() {}

    func record(nanoseconds: UInt64) {
        lock.withLock {
            total += 1
            if samples.count < Self.window { samples.append(nanoseconds) } else { samples[next] = nanoseconds }
            next = (next + 1) % Self.window
        }
    }

    public var summary: Summary {
        let (sorted, total) = lock.withLock { (samples.sorted(), self.total) }
        func q(_ f: Double) -> Double? { sorted.isEmpty ? nil : Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * f))]) / 1e6 }
        return Summary(samples: total, p50Ms: q(0.5), p99Ms: q(0.99), maxMs: sorted.last.map { Double($0) / 1e6 })
    }
}

/// What the bridge could not send of each stream, and why: logged once per stream and publishing session, and
/// shown in the API until the stream is republished.
public final class BridgeWarnings: @unchecked Sendable {
    let lock = NIOLock()
    var byStream: [String: (session: Int, messages: [String])] = [:]

    public init() {}

    /// Notes a warning; true the first time it is seen for the stream's publishing session.
    func note(stream: String, session: Int, _ message: String) -> Bool {
        lock.withLock {
            var entry = byStream[stream] ?? (session, [])
            if entry.session != session { entry = (session, []) }
            if entry.messages.contains(message) { return false }
            entry.messages = Array((entry.messages + [message]).suffix(8))
            byStream[stream] = entry
            return true
        }
    }

    public func warnings(_ stream: String) -> [String] { lock.withLock { byStream[stream]?.messages ?? [] } }
}
