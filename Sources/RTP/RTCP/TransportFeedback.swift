/// Transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01 section 3.1),
/// transport-layer feedback FMT 15: for a range of transport-wide sequence numbers, which packets arrived and
/// when, so the sender's congestion controller (Chromium's GCC) can estimate the path and raise its bitrate.
///
///     | SSRC of packet sender | SSRC of media source |
///     | base sequence number (16) | packet status count (16) |
///     | reference time (24, signed, x 64 ms) | feedback packet count (8) |
///     | packet chunks (16 each) ... | receive deltas (8 or 16 each, x 250 us) ... | padding |
///
/// Written with two-bit status vector chunks only (7 packets per chunk): 00 not received, 01 received with a
/// delta of 0-255 ticks, 10 received with a signed 16-bit delta. Parsing takes run-length and one-bit chunks too.
public struct TransportFeedback: Sendable, Equatable {
    static let format: UInt8 = 15
    public static let tick = Duration.microseconds(250)

    public var senderSSRC: UInt32
    public var mediaSSRC: UInt32
    public var baseSequence: UInt16
    /// In units of 64 ms, 24 bits signed.
    public var referenceTime: Int32
    public var feedbackCount: UInt8
    /// One entry per sequence number from `baseSequence`: the receive delta in 250 us ticks from the previous
    /// received packet (the first from the reference time), or nil when the packet did not arrive.
    public var deltas: [Int?]

    public init(senderSSRC: UInt32, mediaSSRC: UInt32, baseSequence: UInt16, referenceTime: Int32, feedbackCount: UInt8, deltas: [Int?]) {
        (self.senderSSRC, self.mediaSSRC, self.baseSequence) = (senderSSRC, mediaSSRC, baseSequence)
        (self.referenceTime, self.feedbackCount, self.deltas) = (referenceTime, feedbackCount, deltas)
    }

    init(body b: ArraySlice<UInt8>) throws(RTPError) {
        let bad = RTPError.malformed(packetType: RTCPPacket.transportFeedbackType)
        guard b.count >= 16 else { throw bad }
        let s = b.startIndex
        senderSSRC = RTCP.u32(b, s)
        mediaSSRC = RTCP.u32(b, s + 4)
        baseSequence = UInt16(b[s + 8]) << 8 | UInt16(b[s + 9])
        let count = Int(b[s + 10]) << 8 | Int(b[s + 11])
        let ref = Int32(b[s + 12]) << 16 | Int32(b[s + 13]) << 8 | Int32(b[s + 14])
        referenceTime = ref & 0x80_0000 != 0 ? ref - 0x100_0000 : ref
        feedbackCount = b[s + 15]
        // Status symbols: 0 not received, 1 small delta, 2 large delta.
        var symbols: [UInt8] = []
        var i = s + 16
        while symbols.count < count {
            guard i + 2 <= b.endIndex else { throw bad }
            let chunk = UInt16(b[i]) << 8 | UInt16(b[i + 1])
            i += 2
            if chunk & 0x8000 == 0 {
                let symbol = UInt8(chunk >> 13 & 0x3)
                let run = Int(chunk & 0x1FFF)
                guard symbol != 3 else { throw bad }
                symbols += repeatElement(symbol, count: min(run, count - symbols.count))
            } else if chunk & 0x4000 == 0 {
                for k in 0..<14 where symbols.count < count { symbols.append(UInt8(chunk >> (13 - k) & 0x1)) }
            } else {
                for k in 0..<7 where symbols.count < count {
                    let symbol = UInt8(chunk >> (12 - 2 * k) & 0x3)
                    guard symbol != 3 else { throw bad }
                    symbols.append(symbol)
                }
            }
        }
        var deltas: [Int?] = []
        for symbol in symbols {
            switch symbol {
            case 1:
                guard i + 1 <= b.endIndex else { throw bad }
                deltas.append(Int(b[i]))
                i += 1
            case 2:
                guard i + 2 <= b.endIndex else { throw bad }
                deltas.append(Int(Int16(bitPattern: UInt16(b[i]) << 8 | UInt16(b[i + 1]))))
                i += 2
            default:
                deltas.append(nil)
            }
        }
        self.deltas = deltas
    }

    func write(to out: inout [UInt8]) {
        var body: [UInt8] = []
        RTCP.append(senderSSRC, to: &body)
        RTCP.append(mediaSSRC, to: &body)
        body += [UInt8(baseSequence >> 8), UInt8(baseSequence & 0xFF), UInt8(deltas.count >> 8 & 0xFF), UInt8(deltas.count & 0xFF)]
        let ref = UInt32(bitPattern: referenceTime) & 0xFF_FFFF
        body += [UInt8(ref >> 16), UInt8(ref >> 8 & 0xFF), UInt8(ref & 0xFF), feedbackCount]
        let symbols: [UInt16] = deltas.map { d in
            guard let d else { return 0 }
            return (0...255).contains(d) ? 1 : 2
        }
        for start in stride(from: 0, to: symbols.count, by: 7) {
            var chunk: UInt16 = 0xC000
            for (k, symbol) in symbols[start..<min(start + 7, symbols.count)].enumerated() { chunk |= symbol << (12 - 2 * k) }
            body += [UInt8(chunk >> 8), UInt8(chunk & 0xFF)]
        }
        for d in deltas {
            guard let d else { continue }
            if (0...255).contains(d) {
                body.append(UInt8(d))
            } else {
                let v = UInt16(bitPattern: Int16(clamping: d))
                body += [UInt8(v >> 8), UInt8(v & 0xFF)]
            }
        }
        let padding = (4 - body.count % 4) % 4
        body += [UInt8](repeating: 0, count: padding)
        // Padding inside the FCI is allowed (the count says where the data ends); no P bit needed.
        RTCP.header(count: Self.format, type: RTCPPacket.transportFeedbackType, bodyLength: body.count, to: &out)
        out += body
    }
}
