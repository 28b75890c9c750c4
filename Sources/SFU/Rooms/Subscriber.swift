import ICE
import NIOConcurrencyHelpers
import RTP
import SDP

/// One room participant's subscribe PeerConnection: one transport, and a consumer for each `recvonly` mid that
/// carries a track of someone else. The client offers every time the set changes; mids are never reused for
/// another track (docs/ROOMS.md), and a track keeps its SSRC for as long as its mid lives.
final class Subscriber: @unchecked Sendable {
    struct Slot {
        var track: String
        var consumer: Consumer
        var codec: RTPCodec
        /// Forwarding wanted by the client (`subscription`).
        var enabled = true
        /// Added to its producer (only once the transport is connected, and while enabled).
        var attached = false
        /// The tile's size, reserved for simulcast.
        var size: (width: Int, height: Int)?
    }

    let transport: WebRTCTransport
    let session: MediaSession
    /// The peer's ufrag; a re-offer with another one is an ICE restart. Changed only by `subscribe`, which the
    /// room's signaling calls one at a time.
    var remoteUfrag: String
    let lock = NIOLock()
    var slots: [String: Slot] = [:]
    var connected = false

    init(transport: WebRTCTransport, session: MediaSession, remoteUfrag: String) {
        (self.transport, self.session, self.remoteUfrag) = (transport, session, remoteUfrag)
    }

    /// DTLS is up: every enabled consumer starts (each asks its publisher for a keyframe).
    func connect() {
        let start = lock.withLock { () -> [Consumer] in
            connected = true
            var out: [Consumer] = []
            for (mid, s) in slots where s.enabled && !s.attached {
                slots[mid]?.attached = true
                out.append(s.consumer)
            }
            return out
        }
        for c in start { c.producer.add(c) }
    }

    /// The slot of `mid` now carries `consumer` (nil: nothing); the old consumer, if another, stops.
    func set(_ mid: String, _ slot: Slot?) {
        let (old, start) = lock.withLock { () -> (Consumer?, Consumer?) in
            let old = slots[mid]
            var new = slot
            if new != nil, connected, new!.enabled { new!.attached = true }
            slots[mid] = new
            let keep = old.map { o in slot.map { $0.consumer === o.consumer } ?? false } ?? false
            if keep { return (nil, nil) }
            return (old?.attached == true ? old?.consumer : nil, new?.attached == true ? new?.consumer : nil)
        }
        if let old { old.producer.remove(old) }
        if let start { start.producer.add(start) }
    }

    /// `subscription`: forwarding of a track on or off. False when this subscriber has no slot for it.
    func setEnabled(track: String, _ enabled: Bool, size: (Int, Int)? = nil) -> Bool {
        let change = lock.withLock { () -> (Consumer, attach: Bool)?? in
            guard let mid = slots.first(where: { $0.value.track == track })?.key else { return .none }
            slots[mid]?.enabled = enabled
            if let size { slots[mid]?.size = size }
            let attached = slots[mid]!.attached
            let want = enabled && connected
            guard attached != want else { return .some(nil) }
            slots[mid]?.attached = want
            return .some((slots[mid]!.consumer, want))
        }
        guard let change else { return false }
        if let (consumer, attach) = change {
            if attach { consumer.producer.add(consumer) } else { consumer.producer.remove(consumer) }
        }
        return true
    }

    /// Every consumer of the tracks whose producers are in `gone` stops; their slots are forgotten (their mids
    /// are answered inactive from then on).
    func drop(producers gone: [Producer]) {
        let stopped = lock.withLock { () -> [Consumer] in
            var out: [Consumer] = []
            for (mid, s) in slots where gone.contains(where: { $0 === s.consumer.producer }) {
                if s.attached { out.append(s.consumer) }
                slots[mid] = nil
            }
            return out
        }
        for c in stopped { c.producer.remove(c) }
    }

    /// The transport is gone: nothing is forwarded any more.
    func detachAll() {
        let all = lock.withLock { () -> [Consumer] in
            defer { slots = [:]; connected = false }
            return slots.values.filter(\.attached).map(\.consumer)
        }
        for c in all { c.producer.remove(c) }
    }

    func slot(_ mid: String) -> Slot? { lock.withLock { slots[mid] } }

    var allSlots: [(mid: String, slot: Slot)] { lock.withLock { slots.map { ($0.key, $0.value) } } }

    /// RTCP from the client: picture loss and FIR ask the track's publisher for a keyframe (rate-limited there); a
    /// NACK is answered from the publisher's buffer.
    func rtcp(_ packet: [UInt8]) {
        guard let packets = try? RTCPPacket.parseCompound(packet) else { return }
        for p in packets {
            switch p {
            case .pictureLoss(let pli):
                consumer(ssrc: pli.mediaSSRC)?.producer.requestKeyframe()
            case .fullIntraRequest(let fir):
                for e in fir.entries { consumer(ssrc: e.ssrc)?.producer.requestKeyframe() }
            case .nack(let nack):
                consumer(ssrc: nack.mediaSSRC)?.retransmit(nack.lost)
            default:
                continue
            }
        }
    }

    func consumer(ssrc: UInt32) -> Consumer? {
        lock.withLock { slots.values.first { $0.consumer.ssrc == ssrc && $0.attached }?.consumer }
    }
}
