/// Generic NACK (RFC 4585 6.2.1), transport-layer feedback FMT 1: after the sender's and the media source's
/// SSRCs, FCI entries of a packet id (PID) and a bitmask of the 16 following lost packets (BLP).
public struct GenericNACK: Sendable, Equatable {
    static let format: UInt8 = 1
    public var senderSSRC: UInt32
    public var mediaSSRC: UInt32
    /// The lost sequence numbers, in FCI order.
    public var lost: [UInt16]

    public init(senderSSRC: UInt32, mediaSSRC: UInt32, lost: [UInt16]) {
        (self.senderSSRC, self.mediaSSRC, self.lost) = (senderSSRC, mediaSSRC, lost)
    }

    init(body b: ArraySlice<UInt8>) throws(RTPError) {
        guard b.count >= 12, (b.count - 8) % 4 == 0 else { throw .malformed(packetType: RTCPPacket.transportFeedbackType) }
        let s = b.startIndex
        senderSSRC = RTCP.u32(b, s)
        mediaSSRC = RTCP.u32(b, s + 4)
        var lost: [UInt16] = []
        var i = s + 8
        while i < b.endIndex {
            let pid = UInt16(b[i]) << 8 | UInt16(b[i + 1])
            let blp = UInt16(b[i + 2]) << 8 | UInt16(b[i + 3])
            lost.append(pid)
            for bit in 0..<16 where blp & (1 << bit) != 0 { lost.append(pid &+ UInt16(bit + 1)) }
            i += 4
        }
        self.lost = lost
    }

    /// Packs the lost sequence numbers into as few PID/BLP entries as it can (sorted in RTP order from the
    /// first one).
    func write(to out: inout [UInt8]) {
        var entries: [(UInt16, UInt16)] = []
        guard let first = lost.first else {
            RTCP.header(count: Self.format, type: RTCPPacket.transportFeedbackType, bodyLength: 8, to: &out)
            RTCP.append(senderSSRC, to: &out)
            RTCP.append(mediaSSRC, to: &out)
            return
        }
        let sorted = Set(lost).sorted { ($0 &- first) < ($1 &- first) }
        for seq in sorted {
            if let last = entries.last, seq &- last.0 >= 1, seq &- last.0 <= 16 {
                entries[entries.count - 1].1 |= 1 << (seq &- last.0 - 1)
            } else {
                entries.append((seq, 0))
            }
        }
        RTCP.header(count: Self.format, type: RTCPPacket.transportFeedbackType, bodyLength: 8 + 4 * entries.count, to: &out)
        RTCP.append(senderSSRC, to: &out)
        RTCP.append(mediaSSRC, to: &out)
        for (pid, blp) in entries { out += [UInt8(pid >> 8), UInt8(pid & 0xFF), UInt8(blp >> 8), UInt8(blp & 0xFF)] }
    }
}

/// Picture Loss Indication (RFC 4585 6.3.1), payload-specific feedback FMT 1: "send me a keyframe".
public struct PictureLossIndication: Sendable, Equatable {
    static let format: UInt8 = 1
    public var senderSSRC: UInt32
    public var mediaSSRC: UInt32

    public init(senderSSRC: UInt32, mediaSSRC: UInt32) {
        self.senderSSRC = senderSSRC
        self.mediaSSRC = mediaSSRC
    }

    init(body b: ArraySlice<UInt8>) throws(RTPError) {
        guard b.count >= 8 else { throw .malformed(packetType: RTCPPacket.payloadFeedbackType) }
        senderSSRC = RTCP.u32(b, b.startIndex)
        mediaSSRC = RTCP.u32(b, b.startIndex + 4)
    }

    func write(to out: inout [UInt8]) {
        RTCP.header(count: Self.format, type: RTCPPacket.payloadFeedbackType, bodyLength: 8, to: &out)
        RTCP.append(senderSSRC, to: &out)
        RTCP.append(mediaSSRC, to: &out)
    }
}

/// Full Intra Request (RFC 5104 4.3.1), payload-specific feedback FMT 4: the media SSRC field is 0 and each FCI
/// entry names a source and a command sequence number (a repeated request keeps its number).
public struct FullIntraRequest: Sendable, Equatable {
    static let format: UInt8 = 4
    public struct Entry: Sendable, Equatable {
        public var ssrc: UInt32
        public var sequenceNumber: UInt8
        public init(ssrc: UInt32, sequenceNumber: UInt8) {
            self.ssrc = ssrc
            self.sequenceNumber = sequenceNumber
        }
    }

    public var senderSSRC: UInt32
    public var entries: [Entry]

    public init(senderSSRC: UInt32, entries: [Entry]) {
        self.senderSSRC = senderSSRC
        self.entries = entries
    }

    init(body b: ArraySlice<UInt8>) throws(RTPError) {
        guard b.count >= 16, (b.count - 8) % 8 == 0 else { throw .malformed(packetType: RTCPPacket.payloadFeedbackType) }
        let s = b.startIndex
        senderSSRC = RTCP.u32(b, s)
        entries = stride(from: s + 8, to: b.endIndex, by: 8).map { Entry(ssrc: RTCP.u32(b, $0), sequenceNumber: b[$0 + 4]) }
    }

    func write(to out: inout [UInt8]) {
        RTCP.header(count: Self.format, type: RTCPPacket.payloadFeedbackType, bodyLength: 8 + 8 * entries.count, to: &out)
        RTCP.append(senderSSRC, to: &out)
        RTCP.append(0, to: &out)
        for e in entries {
            RTCP.append(e.ssrc, to: &out)
            out += [e.sequenceNumber, 0, 0, 0]
        }
    }
}
