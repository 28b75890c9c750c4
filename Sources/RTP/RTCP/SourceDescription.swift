/// SDES (RFC 3550 6.5): per source, a list of items (type, length, text) ended by a zero byte and padded to a
/// word. Only CNAME (type 1) is modelled; other items are skipped when parsing.
public struct SourceDescription: Sendable, Equatable {
    public struct Chunk: Sendable, Equatable {
        public var ssrc: UInt32
        public var cname: String?
        public init(ssrc: UInt32, cname: String?) {
            self.ssrc = ssrc
            self.cname = cname
        }
    }

    public var chunks: [Chunk]

    public init(chunks: [Chunk]) { self.chunks = chunks }

    init(count: UInt8, body b: ArraySlice<UInt8>) throws(RTPError) {
        var chunks: [Chunk] = []
        var i = b.startIndex
        for _ in 0..<count {
            guard i + 4 <= b.endIndex else { throw .malformed(packetType: RTCPPacket.sourceDescriptionType) }
            var chunk = Chunk(ssrc: RTCP.u32(b, i), cname: nil)
            i += 4
            while true {
                guard i < b.endIndex else { throw .malformed(packetType: RTCPPacket.sourceDescriptionType) }
                let type = b[i]
                if type == 0 {
                    i += 1
                    i += (4 - (i - b.startIndex) % 4) % 4  // to the next word
                    break
                }
                guard i + 2 <= b.endIndex, i + 2 + Int(b[i + 1]) <= b.endIndex else {
                    throw .malformed(packetType: RTCPPacket.sourceDescriptionType)
                }
                let text = b[(i + 2)..<(i + 2 + Int(b[i + 1]))]
                if type == 1 { chunk.cname = String(decoding: text, as: UTF8.self) }
                i += 2 + text.count
            }
            chunks.append(chunk)
        }
        self.chunks = chunks
    }

    func write(to out: inout [UInt8]) {
        var body: [UInt8] = []
        for c in chunks.prefix(31) {
            RTCP.append(c.ssrc, to: &body)
            if let cname = c.cname {
                let text = Array(cname.utf8.prefix(255))
                body += [1, UInt8(text.count)] + text
            }
            body.append(0)
            body += [UInt8](repeating: 0, count: (4 - body.count % 4) % 4)
        }
        RTCP.header(count: UInt8(min(chunks.count, 31)), type: RTCPPacket.sourceDescriptionType, bodyLength: body.count, to: &out)
        out += body
    }
}

/// BYE (RFC 3550 6.6): the sources that leave. The optional reason is not modelled.
public struct Goodbye: Sendable, Equatable {
    public var ssrcs: [UInt32]
    public init(ssrcs: [UInt32]) { self.ssrcs = ssrcs }

    init(count: UInt8, body b: ArraySlice<UInt8>) throws(RTPError) {
        guard b.count >= 4 * Int(count) else { throw .malformed(packetType: RTCPPacket.goodbyeType) }
        ssrcs = (0..<Int(count)).map { RTCP.u32(b, b.startIndex + 4 * $0) }
    }

    func write(to out: inout [UInt8]) {
        let list = ssrcs.prefix(31)
        RTCP.header(count: UInt8(list.count), type: RTCPPacket.goodbyeType, bodyLength: 4 * list.count, to: &out)
        for s in list { RTCP.append(s, to: &out) }
    }
}
