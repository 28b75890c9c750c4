import Audio
import Dispatch
import NIOConcurrencyHelpers
import NIOCore
import RTP

/// A stream's Opus packets (from its ``OpusFeed``) to one WebRTC viewer, in this viewer's own SSRC, sequence
/// numbers and RTP clock (RFC 7587: one 20 ms packet per RTP packet, 48 kHz timestamps).
///
/// The RTP time is the stream time plus this viewer's random offset, so it keeps pace with the video's clock
/// and the sender reports can relate both to one NTP clock. It never goes backwards: should the feed's clock
/// restart earlier, the offset moves so the next packet is 20 ms after the last.
final class OpusSender: @unchecked Sendable {
    struct Stats: Sendable, Codable {
        var packetsSent = 0
        var bytesSent = 0
        /// The longest time between two sends, and how often it exceeded 60 ms (three packets' worth: more than a
        /// browser's jitter buffer holds on a good network, so it is heard as a gap).
        var longestSendGapMs = 0.0
        var sendGapsOver60ms = 0
    }

    let transport: WebRTCTransport
    let payloadType: UInt8
    let ssrc: UInt32
    let eventLoop: any EventLoop
    let lock = NIOLock()
    var sequence = UInt16.random(in: 0...UInt16.max)
    var clock = OpusRTPClock(offset: .random(in: 0...UInt32.max))
    var counts = Stats()
    var lastSentAt: UInt64?
    var endedHandler: (@Sendable () -> Void)?

    init(transport: WebRTCTransport, payloadType: UInt8, ssrc: UInt32) {
        (self.transport, self.payloadType, self.ssrc) = (transport, payloadType, ssrc)
        eventLoop = transport.eventLoop
    }

    /// Called once if the feed ends (the hub ended the stream).
    func onEnded(_ handler: @escaping @Sendable () -> Void) { lock.withLock { endedHandler = handler } }

    func feedEnded() {
        let h = lock.withLock { () -> (@Sendable () -> Void)? in
            defer { endedHandler = nil }
            return endedHandler
        }
        h?()
    }

    var stats: Stats { lock.withLock { counts } }

    /// From the feed's event loop: the packets go from the transport's.
    func deliver(_ packets: [AACToOpus.Packet]) {
        eventLoop.execute { self.send(packets) }
    }

    func send(_ packets: [AACToOpus.Packet]) {
        let now = DispatchTime.now().uptimeNanoseconds
        let wire = lock.withLock { () -> [[UInt8]] in
            if let last = lastSentAt {
                let gap = Double(now &- last) / 1e6
                counts.longestSendGapMs = max(counts.longestSendGapMs, gap)
                if gap > 60 { counts.sendGapsOver60ms += 1 }
            }
            lastSentAt = now
            return packets.map(packet)
        }
        transport.send(rtp: wire)
    }

    /// Called with the lock held.
    func packet(_ p: AACToOpus.Packet) -> [UInt8] {
        let (timestamp, marker) = clock.stamp(p.timestamp)
        let seq = sequence
        sequence &+= 1
        counts.packetsSent += 1
        counts.bytesSent += p.payload.count
        return RTPPacket(header: RTPHeader(marker: marker, payloadType: payloadType, sequenceNumber: seq, timestamp: timestamp, ssrc: ssrc),
                         payload: p.payload[...]).write()
    }

    /// An SR relating the last packet's RTP time to `ntp` of its stream time (ms), nil before any packet.
    func senderReport(ntp: (Double) -> UInt64) -> SenderReport? {
        lock.withLock {
            guard let last = clock.last else { return nil }
            return SenderReport(ssrc: ssrc, ntpTimestamp: ntp(Double(last.stream) / 48), rtpTimestamp: last.rtp,
                                packetCount: UInt32(truncatingIfNeeded: counts.packetsSent), octetCount: UInt32(truncatingIfNeeded: counts.bytesSent))
        }
    }
}

/// A viewer's RTP time for the feed's packets: the stream time (48 kHz ticks) plus the viewer's offset, never
/// going backwards. The first packet, and the first after a gap, start a talkspurt (the marker bit, RFC 3551
/// section 4.1).
struct OpusRTPClock: Sendable {
    var offset: UInt32
    /// The last packet stamped: its RTP time and its stream time.
    var last: (rtp: UInt32, stream: Int64)?

    static let frame = UInt32(OpusEncoder.frameSamples)

    mutating func stamp(_ stream: Int64) -> (timestamp: UInt32, marker: Bool) {
        var timestamp = UInt32(truncatingIfNeeded: stream) &+ offset
        var marker = true
        if let last {
            marker = stream - last.stream != Int64(Self.frame)
            // Should the feed's clock restart earlier (or at the same time), the offset moves so that this packet
            // comes a packet after the last.
            let step = timestamp &- last.rtp
            if step == 0 || step >= 1 << 31 {
                offset = last.rtp &+ Self.frame &- UInt32(truncatingIfNeeded: stream)
                timestamp = last.rtp &+ Self.frame
            }
        }
        last = (timestamp, stream)
        return (timestamp, marker)
    }
}
