import Logging
import ICE
import NIOConcurrencyHelpers
import NIOCore
import RTP

/// One incoming track of a publisher (mediasoup's Producer): its codec and SSRCs as the publisher's offer
/// named them, and the consumers its packets go to.
public final class Producer: @unchecked Sendable {
    public let kind: MediaKind
    public let codec: RTPCodec
    public let ssrc: UInt32
    public let rtxSSRC: UInt32?
    let publisher: WebRTCTransport
    let lock = NIOLock()
    var consumers: [Consumer] = []
    /// What else takes the packets: the hub ingest of a WHIP stream.
    var sinks: [any ProducerSink] = []
    var lastKeyframeRequest: ContinuousClock.Instant?
    /// Media packets received (padding-only packets are not counted here).
    public private(set) var packets = 0
    public private(set) var paddingPackets = 0
    /// Payload and header bytes received, in total and over the last seconds (for the rooms' API).
    public private(set) var bytes = 0
    var rate = RateMeter()
    /// The last packets received, by sequence number modulo the size, for retransmission on a viewer's NACK.
    /// One buffer per producer, shared by its consumers. 512 packets is about 1.5 s of 2 Mbit/s video, more
    /// than a NACK round trip.
    var history: [(sequence: UInt16, packet: [UInt8])?]
    static let historySize = 512
    /// Our SSRC in the feedback we send the publisher.
    static let feedbackSSRC: UInt32 = 1
    /// What arrived from the publisher, for the receiver reports we send it.
    var statistics: ReceiveStatistics
    let epoch = ContinuousClock.now
    /// Packets lost on the way in, asked for again with NACKs (nil when not negotiated or turned off).
    var nacks: NackRequester?
    /// How long to wait before asking for a packet again: LiveSwarm does not measure the publisher's round trip,
    /// so libwebrtc's default before a measurement.
    static let nackRetry = 0.1

    /// The RFC 6464 audio level extension's id, when the publisher sends it.
    let audioLevelID: UInt8?
    /// Audio levels (0 is 0 dBov, 127 is -127 dBov or silence) summed since ``takeAudioLevel()``.
    var levelSum = 0
    var levelCount = 0

    init(kind: MediaKind, codec: RTPCodec, ssrc: UInt32, rtxSSRC: UInt32?, publisher: WebRTCTransport, keepHistory: Bool,
         requestRetransmissions: Bool = false, audioLevelID: UInt8? = nil) {
        (self.kind, self.codec, self.ssrc, self.rtxSSRC, self.publisher) = (kind, codec, ssrc, rtxSSRC, publisher)
        self.audioLevelID = audioLevelID
        history = keepHistory ? Array(repeating: nil, count: Self.historySize) : []
        statistics = ReceiveStatistics(ssrc: ssrc, clockRate: codec.clockRate)
        nacks = requestRetransmissions ? NackRequester() : nil
    }

    /// NACKs sent to the publisher (packets asked for) and packets that came back.
    public var publisherNACKs: (requested: Int, recovered: Int) {
        lock.withLock { (nacks?.requested ?? 0, nacks?.recovered ?? 0) }
    }

    /// Seconds since the producer was made: the clock of its receive statistics.
    func elapsed(_ now: ContinuousClock.Instant = .now) -> Double {
        (now - epoch) / .seconds(1)
    }

    /// An RTP packet from the publisher with this producer's media SSRC (or unwrapped from RTX, `retransmission`):
    /// to every consumer. With NACKs on, a gap is asked for at once, and a packet already here (a duplicate, or
    /// RTX the publisher sends to probe bandwidth) goes no further.
    func receive(_ packet: [UInt8], retransmission: Bool = false) {
        let (seq, ts, _) = RTPPacket.fixedFields(packet)
        let arrival = elapsed()
        var level: Int?
        if let id = audioLevelID, !retransmission, let v = RTPPacket.oneByteExtension(id, in: packet), let b = v.first {
            level = Int(b & 0x7F)
        }
        let (targets, sinks, gap) = lock.withLock { () -> ([Consumer], [any ProducerSink], Bool) in
            if let level {
                levelSum += level
                levelCount += 1
            }
            // Without NACKs there is no gap to fill: a retransmission is never wanted.
            let arrived = nacks?.received(seq, at: arrival)
            // Only what was already here goes no further. An RTX packet may carry a packet that never came on the
            // media SSRC and was not asked for yet: libwebrtc probes bandwidth by resending its newest packets on
            // RTX, and when the original was lost on the way the copy comes before the next packet shows the gap.
            // Dropping it lost that packet for good (no gap was ever seen, so it was never asked for): the frame
            // was given up and viewers froze until the next keyframe, over and over under 5 % loss.
            if arrived == .duplicate { return ([], [], false) }
            if retransmission && arrived == nil { return ([], [], false) }
            // Padding alone (a sender probing for bandwidth, as libwebrtc does on a muted track's SSRC) is not
            // media: counted apart, but still forwarded so that subscribers' sequence numbers stay continuous.
            if Self.isPaddingOnly(packet) { paddingPackets += 1 } else { packets += 1 }
            bytes += packet.count
            rate.add(packet.count, at: arrival)
            statistics.record(sequence: seq, timestamp: ts, arrival: arrival)
            if !history.isEmpty {
                history[Int(seq) % Self.historySize] = (seq, packet)
            }
            return (consumers, self.sinks, arrived == .afterGap)
        }
        // Every viewer's datagram is queued, then the socket flushed once per port: one sendmmsg for the fan-out.
        var flush: [MediaSession] = []
        for c in targets {
            if let session = c.forward(packet), !flush.contains(where: { $0.flushGroup == session.flushGroup }) {
                flush.append(session)
            }
        }
        for session in flush { session.flush() }
        for s in sinks { s.producer(self, received: packet) }
        if gap { requestMissing() }
    }

    /// The mean audio level of the packets since the last call (0 loudest, 127 silent) and how many there were;
    /// nil when none carried a level.
    public func takeAudioLevel() -> (level: Double, packets: Int)? {
        lock.withLock {
            defer { (levelSum, levelCount) = (0, 0) }
            return levelCount == 0 ? nil : (Double(levelSum) / Double(levelCount), levelCount)
        }
    }

    /// An RTP packet whose payload is all padding (RFC 3550 5.1: P bit, the last byte counts the padding).
    static func isPaddingOnly(_ p: [UInt8]) -> Bool {
        guard p.count > 12, p[0] & 0x20 != 0, let headerEnd = RTPPacket.headerLength(p) else { return false }
        return headerEnd + Int(p[p.count - 1]) >= p.count
    }

    /// A packet on this producer's RTX SSRC (RFC 4588): the original sequence number from the first two bytes of
    /// the payload, the media payload type and SSRC back, padding dropped. RTX that carries only padding is the
    /// publisher probing for bandwidth, and is not media.
    func receiveRTX(_ p: [UInt8]) {
        guard let headerEnd = RTPPacket.headerLength(p) else { return }
        var end = p.count
        if p[0] & 0x20 != 0 {
            let pad = Int(p[end - 1])
            guard pad > 0, pad <= end - headerEnd else { return }
            end -= pad
        }
        guard end - headerEnd > 2 else { return }
        var out = Array(p[0..<headerEnd])
        out[0] &= ~0x20
        out[1] = p[1] & 0x80 | codec.payloadType
        out[2] = p[headerEnd]
        out[3] = p[headerEnd + 1]
        out[8] = UInt8(ssrc >> 24)
        out[9] = UInt8(ssrc >> 16 & 0xFF)
        out[10] = UInt8(ssrc >> 8 & 0xFF)
        out[11] = UInt8(ssrc & 0xFF)
        out += p[(headerEnd + 2)..<end]
        receive(out, retransmission: true)
    }

    /// What the NACK requester knows of one packet (for the logs).
    func describeMissing(_ sequence: UInt16) -> String {
        let now = elapsed()
        return lock.withLock { nacks?.describe(sequence, now: now) ?? "NACK off" }
    }

    /// A generic NACK (RFC 4585 6.2.1) to the publisher for the packets due to be asked for (again).
    func requestMissing() {
        let now = elapsed()
        let due = lock.withLock { nacks?.due(at: now, retryAfter: Self.nackRetry) ?? [] }
        guard !due.isEmpty else { return }
        var out: [UInt8] = []
        RTCPPacket.nack(GenericNACK(senderSSRC: Self.feedbackSSRC, mediaSSRC: ssrc, lost: due)).write(to: &out)
        publisher.send(out, isRTCP: true)
    }

    /// This track's block for the next receiver report to the publisher; nil before its first packet.
    func receptionReport() -> ReceptionReport? {
        let now = elapsed()
        return lock.withLock { statistics.report(at: now) }
    }

    /// A packet still in the retransmission buffer.
    func stored(_ sequence: UInt16) -> [UInt8]? {
        lock.withLock {
            guard !history.isEmpty, let entry = history[Int(sequence) % Self.historySize], entry.sequence == sequence else { return nil }
            return entry.packet
        }
    }

    /// The publisher's sender report for this track: noted for our receiver reports (LSR/DLSR, from which the
    /// publisher measures its round-trip time), and each consumer sends its own, in its numbering.
    func senderReport(_ report: SenderReport) {
        let arrival = elapsed()
        let (targets, sinks) = lock.withLock { () -> ([Consumer], [any ProducerSink]) in
            statistics.senderReport(ntpTimestamp: report.ntpTimestamp, arrival: arrival)
            return (consumers, self.sinks)
        }
        for c in targets { c.senderReport(report) }
        for s in sinks { s.producer(self, senderReport: report) }
    }

    func add(_ consumer: Consumer) {
        lock.withLock { consumers.append(consumer) }
        requestKeyframe()
    }

    func add(sink: any ProducerSink) {
        lock.withLock { sinks.append(sink) }
    }

    func remove(sink: any ProducerSink) {
        lock.withLock { sinks.removeAll { $0 === sink } }
    }

    func remove(_ consumer: Consumer) {
        lock.withLock { consumers.removeAll { $0 === consumer } }
    }

    /// A PLI to the publisher (RFC 4585 6.3.1), at most one per 500 ms however many viewers ask.
    func requestKeyframe() {
        guard kind == .video else { return }
        let now = ContinuousClock.now
        let send = lock.withLock { () -> Bool in
            if let last = lastKeyframeRequest, now - last < .milliseconds(500) { return false }
            lastKeyframeRequest = now
            return true
        }
        guard send else { return }
        var pli: [UInt8] = []
        RTCPPacket.pictureLoss(PictureLossIndication(senderSSRC: Self.feedbackSSRC, mediaSSRC: ssrc)).write(to: &pli)
        publisher.send(pli, isRTCP: true)
    }

    public var consumerCount: Int { lock.withLock { consumers.count } }

    /// Received so far: packets, packets lost on the way (before retransmission), and bits per second over the last
    /// few seconds.
    public var receiveFigures: (packets: Int, padding: Int, lost: Int64, bitrate: Int) {
        let now = elapsed()
        return lock.withLock { (packets, paddingPackets, statistics.cumulativeLost, rate.bitsPerSecond(at: now)) }
    }
}

/// Bytes per whole second over the last few seconds: a bitrate that follows changes (a mute) within seconds.
struct RateMeter: Sendable {
    static let seconds = 4
    var buckets = [Int](repeating: 0, count: RateMeter.seconds + 1)
    var current = -1

    mutating func add(_ bytes: Int, at time: Double) {
        advance(to: Int(time))
        buckets[current % buckets.count] += bytes
    }

    mutating func advance(to second: Int) {
        guard second > current else { return }
        for s in max(current + 1, second - buckets.count + 1)...second { buckets[s % buckets.count] = 0 }
        current = second
    }

    /// Over the last complete seconds (the one under way is left out).
    func bitsPerSecond(at time: Double) -> Int {
        let now = Int(time)
        guard current >= 0, now - current <= Self.seconds else { return 0 }
        var total = 0
        for s in (now - Self.seconds)..<now where s >= 0 && s <= current && s > current - buckets.count {
            total += buckets[s % buckets.count]
        }
        return total * 8 / Self.seconds
    }
}

/// One outgoing track to one viewer (mediasoup's Consumer). Each viewer's transport has its own numbering:
/// the payload type is the viewer's, the SSRC ours, and sequence numbers and timestamps are shifted to start
/// at random values (RFC 3550 5.1), continuous for the viewer. Header extensions are not forwarded: their ids
/// belong to the publisher's session.
public final class Consumer: @unchecked Sendable {
    public let producer: Producer
    public let payloadType: UInt8
    public let ssrc: UInt32
    /// The viewer's RTX payload type and our RTX SSRC (RFC 4588), when the viewer negotiated RTX.
    public let rtx: (payloadType: UInt8, ssrc: UInt32)?
    let transport: WebRTCTransport
    let lock = NIOLock()
    var sequenceOffset: UInt16?
    var timestampOffset: UInt32?
    let sequenceStart = UInt16.random(in: 0...UInt16.max)
    let timestampStart = UInt32.random(in: 0...UInt32.max)
    /// The RTX stream's own sequence numbers.
    var rtxSequence = UInt16.random(in: 0...UInt16.max)
    public private(set) var sent = 0

    init(producer: Producer, payloadType: UInt8, ssrc: UInt32, rtx: (payloadType: UInt8, ssrc: UInt32)? = nil, transport: WebRTCTransport) {
        (self.producer, self.payloadType, self.ssrc, self.rtx, self.transport) = (producer, payloadType, ssrc, rtx, transport)
    }

    public private(set) var retransmitted = 0
    var octets = 0

    /// A viewer's NACK (RFC 4585 6.2.1): the packets still in the producer's buffer are sent again, rewritten the
    /// same way: on the RTX stream when negotiated (RFC 4588: the original sequence number first in the payload),
    /// else as they were (same sequence numbers: SRTP allows the repeat for our outbound context).
    func retransmit(_ lost: [UInt16]) {
        guard let offset = lock.withLock({ sequenceOffset }) else { return }
        for seq in lost {
            guard let original = producer.stored(seq &- offset) else { continue }
            lock.withLock { retransmitted += 1 }
            if let out = rewritten(original, counted: false, rtx: rtx) { transport.send(out, isRTCP: false) }
        }
    }

    /// SR for the viewer (RFC 3550 6.4.1): the publisher's wall clock with the RTP time in our numbering, and our
    /// own counts, so the viewer can sync audio and video.
    func senderReport(_ report: SenderReport) {
        let (offset, sent, octets) = lock.withLock { (timestampOffset, self.sent, self.octets) }
        guard let offset else { return }
        var out: [UInt8] = []
        RTCPPacket.senderReport(SenderReport(ssrc: ssrc, ntpTimestamp: report.ntpTimestamp, rtpTimestamp: report.rtpTimestamp &+ offset,
                                             packetCount: UInt32(truncatingIfNeeded: sent), octetCount: UInt32(truncatingIfNeeded: octets)))
            .write(to: &out)
        transport.send(out, isRTCP: true)
    }

    /// Sends the publisher's packet in this viewer's numbering: the header rewritten on the stack, the payload
    /// encrypted straight from the publisher's bytes into the viewer's datagram (no other copy). The datagram is
    /// queued unflushed; returns the session to flush, nil if nothing was sent.
    func forward(_ packet: [UInt8], counted: Bool = true) -> MediaSession? {
        guard let headerEnd = RTPPacket.headerLength(packet) else { return nil }
        let (seqOut, tsOut, _) = numbering(packet, payloadBytes: packet.count - headerEnd, counted: counted, rtx: false)
        let cc = Int(packet[0] & 0x0F), headerLength = 12 + 4 * cc
        return withUnsafeTemporaryAllocation(byteCount: headerLength, alignment: 4) { h in
            h[0] = packet[0] & ~0x10  // header extensions are the publisher's: not forwarded
            h[1] = packet[1] & 0x80 | payloadType
            h.storeBytes(of: seqOut.bigEndian, toByteOffset: 2, as: UInt16.self)
            h.storeBytes(of: tsOut.bigEndian, toByteOffset: 4, as: UInt32.self)
            h.storeBytes(of: ssrc.bigEndian, toByteOffset: 8, as: UInt32.self)
            for i in 12..<headerLength { h[i] = packet[i] }
            return packet.withUnsafeBytes { p in
                transport.sendUnflushed(header: UnsafeRawBufferPointer(h),
                                        payload: UnsafeRawBufferPointer(rebasing: p[headerEnd...]))
            }
        }
    }

    /// The packet's sequence number and timestamp in this viewer's numbering (the offsets are set by the first
    /// packet), counted as sent when `counted`; with `rtx`, the RTX stream's next sequence number too.
    func numbering(_ packet: [UInt8], payloadBytes: Int, counted: Bool, rtx: Bool) -> (UInt16, UInt32, UInt16) {
        let (seq, ts, _) = RTPPacket.fixedFields(packet)
        return lock.withLock { () -> (UInt16, UInt32, UInt16) in
            if sequenceOffset == nil {
                sequenceOffset = sequenceStart &- seq
                timestampOffset = timestampStart &- ts
            }
            if counted {
                sent += 1
                octets += payloadBytes
            }
            if rtx { rtxSequence &+= 1 }
            return (seq &+ sequenceOffset!, ts &+ timestampOffset!, rtxSequence)
        }
    }

    /// The publisher's packet in this viewer's numbering, header extensions dropped; with `rtx`, on that RTX
    /// payload type and SSRC with the RTX stream's own sequence number, the (rewritten) original sequence number
    /// before the payload, and no padding.
    func rewritten(_ packet: [UInt8], counted: Bool, rtx: (payloadType: UInt8, ssrc: UInt32)?) -> [UInt8]? {
        guard let headerEnd = RTPPacket.headerLength(packet) else { return nil }
        let asRTX = rtx != nil
        var end = packet.count
        if asRTX, packet[0] & 0x20 != 0 {
            end -= Int(packet[end - 1])
            guard end >= headerEnd else { return nil }
        }
        let cc = Int(packet[0] & 0x0F)
        let (seqOut, tsOut, rtxSeq) = numbering(packet, payloadBytes: packet.count - headerEnd, counted: counted, rtx: asRTX)
        let (pt, ssrcOut, seqHeader) = rtx.map { ($0.payloadType, $0.ssrc, rtxSeq) } ?? (payloadType, ssrc, seqOut)
        var out = [UInt8]()
        out.reserveCapacity(end - (headerEnd - 12 - 4 * cc) + 16)
        out.append(packet[0] & (asRTX ? ~0x30 : ~0x10))
        out.append(packet[1] & 0x80 | pt)
        out += [UInt8(seqHeader >> 8), UInt8(seqHeader & 0xFF)]
        out += [UInt8(tsOut >> 24), UInt8(tsOut >> 16 & 0xFF), UInt8(tsOut >> 8 & 0xFF), UInt8(tsOut & 0xFF)]
        out += [UInt8(ssrcOut >> 24), UInt8(ssrcOut >> 16 & 0xFF), UInt8(ssrcOut >> 8 & 0xFF), UInt8(ssrcOut & 0xFF)]
        out += packet[12..<(12 + 4 * cc)]
        if asRTX { out += [UInt8(seqOut >> 8), UInt8(seqOut & 0xFF)] }
        out += packet[headerEnd..<end]
        return out
    }
}

/// A stream published over WebRTC (one Router per stream, as in mediasoup): its publisher's transport and
/// producers, and its viewers' consumers.
public final class Router: @unchecked Sendable {
    public let name: String
    public let publisher: WebRTCTransport
    /// The publisher's tracks; rooms add and remove some as the publisher renegotiates (a screen share).
    public var producers: [Producer] { lock.withLock { current } }
    var current: [Producer]
    let eventLoop: (any EventLoop)?
    let lock = NIOLock()
    var viewers: [ObjectIdentifier: (WebRTCTransport, [Consumer])] = [:]
    /// The publisher's transport-wide sequence number extension id, when negotiated.
    let transportCCID: UInt8?
    var transportCC: TransportCCRecorder
    var feedbackTimer: RepeatedTask?
    var reportTimer: RepeatedTask?
    var nackTimer: RepeatedTask?
    public private(set) var transportCCFeedbacks = 0
    public private(set) var receiverReports = 0
    /// How often transport-cc feedback goes to the publisher (libwebrtc's receivers send it every 50-100 ms).
    static let feedbackInterval = TimeAmount.milliseconds(100)
    /// How often a receiver report goes to the publisher (libwebrtc sends its own about once a second for video).
    static let reportInterval = TimeAmount.seconds(1)

    init(name: String, publisher: WebRTCTransport, producers: [Producer], transportCCID: UInt8? = nil, eventLoop: (any EventLoop)? = nil) {
        (self.name, self.publisher, self.current, self.transportCCID) = (name, publisher, producers, transportCCID)
        self.eventLoop = eventLoop
        transportCC = TransportCCRecorder(start: .now)
        guard let eventLoop else { return }
        if transportCCID != nil {
            feedbackTimer = eventLoop.scheduleRepeatedTask(initialDelay: Self.feedbackInterval, delay: Self.feedbackInterval) { [weak self] _ in
                self?.sendTransportFeedback()
            }
        }
        reportTimer = eventLoop.scheduleRepeatedTask(initialDelay: Self.reportInterval, delay: Self.reportInterval) { [weak self] _ in
            self?.sendReceiverReport()
        }
        if producers.contains(where: { $0.nacks != nil }) { startNACKTimer() }
    }

    func startNACKTimer() {
        guard let eventLoop, nackTimer == nil else { return }
        nackTimer = eventLoop.scheduleRepeatedTask(initialDelay: Self.nackInterval, delay: Self.nackInterval) { [weak self] _ in
            for p in self?.producers ?? [] { p.requestMissing() }
        }
    }

    /// Tracks the publisher added by renegotiating.
    func add(_ new: [Producer]) {
        lock.withLock {
            current += new
            if new.contains(where: { $0.nacks != nil }) { startNACKTimer() }
        }
    }

    /// Tracks the publisher stopped sending (their sections went inactive).
    func remove(_ gone: [Producer]) {
        lock.withLock { current.removeAll { p in gone.contains { $0 === p } } }
    }

    /// How often packets still missing from the publisher are looked at to be asked for again.
    static let nackInterval = TimeAmount.milliseconds(20)

    public var publisherNACKs: (requested: Int, recovered: Int) {
        producers.map(\.publisherNACKs).reduce((0, 0)) { ($0.0 + $1.0, $0.1 + $1.1) }
    }

    /// A receiver report (RFC 3550 6.4.2) with a block for every track that has sent something: loss, jitter and
    /// LSR/DLSR, from which the publisher's stack computes its round-trip time and loss statistics.
    func sendReceiverReport() {
        let blocks = producers.compactMap { $0.receptionReport() }
        guard !blocks.isEmpty else { return }
        var out: [UInt8] = []
        RTCPPacket.receiverReport(ReceiverReport(ssrc: Producer.feedbackSSRC, reports: blocks)).write(to: &out)
        lock.withLock { receiverReports += 1 }
        publisher.send(out, isRTCP: true)
    }

    func sendTransportFeedback() {
        let media = producers.first?.ssrc ?? 0
        guard let fb = lock.withLock({ () -> TransportFeedback? in
            let fb = transportCC.feedback(senderSSRC: Producer.feedbackSSRC, mediaSSRC: media)
            if fb != nil { transportCCFeedbacks += 1 }
            return fb
        }) else { return }
        var out: [UInt8] = []
        RTCPPacket.transportFeedback(fb).write(to: &out)
        publisher.send(out, isRTCP: true)
    }

    /// RTP and RTCP from the publisher, after SRTP.
    func publisherPacket(_ packet: [UInt8], isRTCP: Bool) {
        if isRTCP {
            guard let packets = try? RTCPPacket.parseCompound(packet) else { return }
            let producers = self.producers
            for case .senderReport(let sr) in packets { producers.first { $0.ssrc == sr.ssrc }?.senderReport(sr) }
            return
        }
        guard packet.count >= 12 else { return }
        if let id = transportCCID, let v = RTPPacket.oneByteExtension(id, in: packet), v.count == 2 {
            let seq = UInt16(v[v.startIndex]) << 8 | UInt16(v[v.startIndex + 1])
            let now = ContinuousClock.now
            lock.withLock { transportCC.record(seq, at: now) }
        }
        let ssrc = RTPPacket.fixedFields(packet).ssrc
        let producers = self.producers
        if let producer = producers.first(where: { $0.ssrc == ssrc }) {
            producer.receive(packet)
        } else if let producer = producers.first(where: { $0.rtxSSRC == ssrc }) {
            producer.receiveRTX(packet)
        }
    }

    /// RTCP from a viewer: picture loss and FIR become a (rate-limited) PLI to the publisher; a NACK is answered
    /// from the producer's buffer when NACK is on.
    func viewerRTCP(_ packet: [UInt8], from transport: WebRTCTransport) {
        guard let packets = try? RTCPPacket.parseCompound(packet) else { return }
        for p in packets {
            switch p {
            case .pictureLoss, .fullIntraRequest:
                for producer in producers where producer.kind == .video { producer.requestKeyframe() }
            case .nack(let nack):
                let consumers = lock.withLock { viewers[ObjectIdentifier(transport)]?.1 ?? [] }
                consumers.first { $0.ssrc == nack.mediaSSRC }?.retransmit(nack.lost)
            default:
                continue
            }
        }
    }

    public var viewerCount: Int { lock.withLock { viewers.count } }
    public var retransmitted: Int { lock.withLock { viewers.values.flatMap(\.1) }.reduce(0) { $0 + $1.retransmitted } }

    func addViewer(_ transport: WebRTCTransport, consumers: [Consumer]) {
        lock.withLock { viewers[ObjectIdentifier(transport)] = (transport, consumers) }
        for c in consumers { c.producer.add(c) }
    }

    func removeViewer(_ transport: WebRTCTransport) {
        let removed = lock.withLock { viewers.removeValue(forKey: ObjectIdentifier(transport)) }
        for c in removed?.1 ?? [] { c.producer.remove(c) }
    }

    /// The publisher left: every viewer's consumers leave their producers (a producer and its consumers hold each
    /// other, and the producer holds the publisher's packet history), and every viewer's transport is closed.
    func close() {
        feedbackTimer?.cancel()
        reportTimer?.cancel()
        nackTimer?.cancel()
        let all = lock.withLock { () -> [(WebRTCTransport, [Consumer])] in
            defer { viewers = [:] }
            return Array(viewers.values)
        }
        for (_, consumers) in all { for c in consumers { c.producer.remove(c) } }
        for (t, _) in all { t.close() }
    }
}
