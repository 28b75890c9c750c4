import RTP

/// A publisher's video packets put back in order and grouped into whole frames (all packets of one RTP timestamp,
/// ending at the marker bit) before the frames go into the hub: a decoder fed a frame with a packet missing shows
/// garbage until the next keyframe, so a frame is held until its packets are all there (NACK brings lost ones back)
/// or given up after ``maxWait``.
///
/// Sequence numbers are extended to 64 bits. Packets before the next expected one (duplicates, retransmissions of
/// a frame given up) are dropped. A frame is emitted only when every sequence number from the end of the last
/// frame to its marker is present. Giving up drops everything up to the first marker after the hole (the frame the
/// hole was in); the owner then waits for a keyframe (and asks for one). Pure: packets and instants (in seconds) in,
/// frames out.
///
/// A frame may also end with no packet missing and no marker: a new timestamp before the marker means the sender
/// stopped sending the frame part way. libwebrtc's pacer does this when a keyframe is queued (its keyframe
/// flushing): the delta frame's packets still waiting are thrown away, and as sequence numbers are given at
/// sending, nothing is missing; seen with Chromium under CPU load. Those first packets are dropped as a frame cut
/// short, and the keyframe after them is whole. (Grouped by marker alone, they were glued to the keyframe and the
/// depacketizer refused the lot: an FU-A start, then a STAP-A.) Padding-only packets carry the last frame's
/// timestamp and belong to no frame: they neither start nor cut one.
struct FrameAssembler: Sendable {
    struct Packet: Sendable, Equatable {
        var sequence: Int64
        var timestamp: UInt32
        var marker: Bool
        /// The whole RTP packet (header included).
        var bytes: [UInt8]

        /// RTP padding and nothing else (RFC 3550 5.1: the P bit, the last byte counting the padding).
        var isPaddingOnly: Bool {
            guard bytes.count > 12, bytes[0] & 0x20 != 0, let headerEnd = RTPPacket.headerLength(bytes) else { return false }
            return headerEnd + Int(bytes[bytes.count - 1]) >= bytes.count
        }
    }

    enum Output: Sendable, Equatable {
        /// The packets of one frame, in order.
        case frame([Packet])
        /// A frame (or more) lost: `dropped` buffered packets thrown away with it.
        case gaveUp(dropped: Int)
        /// A frame the sender stopped sending part way (a new timestamp came before its marker): its `dropped`
        /// packets thrown away. Later frames may refer to it: the owner waits for a keyframe.
        case cutShort(dropped: Int)
    }

    /// How long a hole may hold frames back before they are given up: two NACK round trips and a retry on a
    /// long path (the NACK requester retries every 100 ms).
    var maxWait: Double = 0.35
    /// Buffered packets beyond which the oldest hole is given up at once (about 2 s of 4 Mbit/s video).
    var maxPackets = 1000

    var buffer: [Int64: Packet] = [:]
    /// The first sequence number of the next frame; nil until the first packet, and while resynchronizing after a
    /// hole with no marker after it.
    var next: Int64?
    var highest: Int64?
    /// When the frame at `next` was first found held back by a missing packet (one with later packets after it).
    var blockedSince: Double?
    var resync = false

    /// Packets dropped as duplicates or too late.
    private(set) var late = 0
    /// The missing packet of the last hole given up, and the highest sequence number then (for the logs).
    private(set) var lastHole: (missing: Int64, highest: Int64, blocked: Double)?

    mutating func extend(_ seq: UInt16) -> Int64 {
        guard let h = highest else { return Int64(seq) + (1 << 16) }
        let delta = Int64(Int16(bitPattern: seq &- UInt16(truncatingIfNeeded: h)))
        return h + delta
    }

    mutating func push(sequence seq: UInt16, timestamp: UInt32, marker: Bool, bytes: [UInt8], at now: Double) -> [Output] {
        let s = extend(seq)
        highest = max(highest ?? s, s)
        if resync {
            // After a hole with no marker buffered: the next frame starts after the next marker seen.
            if marker {
                resync = false
                next = s + 1
            }
            return []
        }
        if next == nil { next = s }
        guard s >= next!, buffer[s] == nil else {
            late += 1
            return []
        }
        buffer[s] = Packet(sequence: s, timestamp: timestamp, marker: marker, bytes: bytes)
        return drain(at: now)
    }

    /// Gives up a hole that has waited too long; call it a few times a second while packets may have stopped.
    mutating func poll(at now: Double) -> [Output] { drain(at: now) }

    mutating func drain(at now: Double) -> [Output] {
        var out: [Output] = []
        while let start = next, !buffer.isEmpty {
            var s = start
            var complete = false, cut = false
            var timestamp: UInt32?
            while let p = buffer[s] {
                if !p.isPaddingOnly {
                    if let t = timestamp, t != p.timestamp {
                        cut = true
                        break
                    }
                    timestamp = p.timestamp
                }
                if p.marker {
                    complete = true
                    break
                }
                s += 1
            }
            if cut {
                for k in start..<s { buffer[k] = nil }
                out.append(.cutShort(dropped: Int(s - start)))
                next = s
                blockedSince = nil
                continue
            }
            if complete {
                out.append(.frame((start...s).map { buffer.removeValue(forKey: $0)! }))
                next = s + 1
                blockedSince = nil
                continue
            }
            // The frame's later packets are still on their way (a big keyframe paced out over a few hundred ms):
            // not a hole, nothing to give up.
            guard let h = highest, s < h else {
                blockedSince = nil
                break
            }
            // Held back by the missing packet `s`, with later ones here.
            let since = blockedSince ?? now
            blockedSince = since
            guard now - since >= maxWait || buffer.count > maxPackets else { break }
            lastHole = (s, h, now - since)
            out.append(.gaveUp(dropped: giveUp(from: start)))
            blockedSince = nil
        }
        return out
    }

    /// Drops the frame the hole is in: everything up to the first buffered marker at or after `start`.
    mutating func giveUp(from start: Int64) -> Int {
        let markers = buffer.values.filter { $0.marker && $0.sequence >= start }.map(\.sequence)
        guard let end = markers.min() else {
            let n = buffer.count
            buffer.removeAll()
            next = nil
            resync = true
            return n
        }
        let gone = buffer.keys.filter { $0 <= end }
        for k in gone { buffer[k] = nil }
        next = end + 1
        return gone.count
    }
}
