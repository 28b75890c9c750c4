/// The RTP fixed header and its extensions (RFC 3550 section 5.1, RFC 8285 for header extensions):
///
///      0                   1                   2                   3
///      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |V=2|P|X|  CC   |M|     PT      |       sequence number         |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |                           timestamp                           |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |           synchronization source (SSRC) identifier            |
///     +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
///     |            contributing source (CSRC) identifiers             |
///     |                             ....                              |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///
/// then, with X, a header extension block: a 16-bit profile (0xBEDE for RFC 8285's one-byte elements,
/// 0x100x for two-byte ones), a 16-bit length in words, and the elements.
public struct RTPHeader: Sendable, Equatable {
    public struct Extension: Sendable, Equatable {
        /// 1-14 in one-byte form, 1-255 in two-byte form.
        public var id: UInt8
        public var value: [UInt8]
        public init(id: UInt8, value: [UInt8]) {
            self.id = id
            self.value = value
        }
    }

    public var marker: Bool
    public var payloadType: UInt8
    public var sequenceNumber: UInt16
    public var timestamp: UInt32
    public var ssrc: UInt32
    public var csrcs: [UInt32]
    /// RFC 8285 elements, in order. An extension block with another profile is kept whole in
    /// ``otherExtension`` instead.
    public var extensions: [Extension]
    public var otherExtension: (profile: UInt16, data: [UInt8])?

    public init(marker: Bool = false, payloadType: UInt8, sequenceNumber: UInt16, timestamp: UInt32, ssrc: UInt32,
                csrcs: [UInt32] = [], extensions: [Extension] = []) {
        self.marker = marker
        self.payloadType = payloadType
        self.sequenceNumber = sequenceNumber
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.csrcs = csrcs
        self.extensions = extensions
        self.otherExtension = nil
    }

    public static func == (a: RTPHeader, b: RTPHeader) -> Bool {
        a.marker == b.marker && a.payloadType == b.payloadType && a.sequenceNumber == b.sequenceNumber
            && a.timestamp == b.timestamp && a.ssrc == b.ssrc && a.csrcs == b.csrcs && a.extensions == b.extensions
            && a.otherExtension?.profile == b.otherExtension?.profile && a.otherExtension?.data == b.otherExtension?.data
    }

    public func extensionValue(id: UInt8) -> [UInt8]? { extensions.first { $0.id == id }?.value }
}

/// An RTP packet: where its header ends and its payload is, without copying.
public struct RTPPacket: Sendable, Equatable {
    public var header: RTPHeader
    /// The payload (padding removed).
    public var payload: ArraySlice<UInt8>
    /// Bytes of padding the packet carried (0 without the P bit).
    public var padding: Int

    /// Whether a packet on a muxed port is RTCP rather than RTP (RFC 5761 4: payload types 64-95 with the
    /// marker bit, i.e. a second byte of 192-223, are RTCP).
    public static func isRTCP<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8, C.Index == Int {
        bytes.count >= 2 && (192...223).contains(bytes[bytes.startIndex + 1])
    }

    public init(header: RTPHeader, payload: ArraySlice<UInt8>, padding: Int = 0) {
        self.header = header
        self.payload = payload
        self.padding = padding
    }

    public init(parsing b: [UInt8]) throws(RTPError) {
        guard b.count >= 12 else { throw .truncated(needed: 12, available: b.count) }
        guard b[0] >> 6 == 2 else { throw .badVersion(b[0] >> 6) }
        let hasPadding = b[0] & 0x20 != 0
        let hasExtension = b[0] & 0x10 != 0
        let csrcCount = Int(b[0] & 0x0F)
        var i = 12 + 4 * csrcCount
        guard i <= b.count else { throw .headerOverrun }
        var header = RTPHeader(marker: b[1] & 0x80 != 0, payloadType: b[1] & 0x7F,
                               sequenceNumber: UInt16(b[2]) << 8 | UInt16(b[3]), timestamp: Self.u32(b, 4), ssrc: Self.u32(b, 8),
                               csrcs: (0..<csrcCount).map { Self.u32(b, 12 + 4 * $0) })
        if hasExtension {
            guard i + 4 <= b.count else { throw .headerOverrun }
            let profile = UInt16(b[i]) << 8 | UInt16(b[i + 1])
            let length = 4 * (Int(b[i + 2]) << 8 | Int(b[i + 3]))
            guard i + 4 + length <= b.count else { throw .headerOverrun }
            let block = b[(i + 4)..<(i + 4 + length)]
            if profile == 0xBEDE {
                header.extensions = try Self.oneByteElements(block)
            } else if profile & 0xFFF0 == 0x1000 {
                header.extensions = try Self.twoByteElements(block)
            } else {
                header.otherExtension = (profile, Array(block))
            }
            i += 4 + length
        }
        var end = b.count
        var padding = 0
        if hasPadding {
            let count = b[b.count - 1]
            guard count > 0, b.count - Int(count) >= i else { throw .badPadding(count) }
            padding = Int(count)
            end -= padding
        }
        self.header = header
        self.payload = b[i..<end]
        self.padding = padding
    }

    /// The sequence number, timestamp and SSRC of the fixed header (RFC 3550 5.1), read in place: for the
    /// forwarding path. `b` must hold at least the 12 bytes of the fixed header.
    public static func fixedFields(_ b: [UInt8]) -> (sequenceNumber: UInt16, timestamp: UInt32, ssrc: UInt32) {
        (UInt16(b[2]) << 8 | UInt16(b[3]), RTCP.u32(b[...], 4), RTCP.u32(b[...], 8))
    }

    /// Where the payload starts: after the fixed header, the CSRCs and the extension block. Nil when those run
    /// past the end. Reads only the lengths, without parsing or allocating: for the forwarding path.
    public static func headerLength(_ b: [UInt8]) -> Int? {
        guard b.count >= 12 else { return nil }
        var end = 12 + 4 * Int(b[0] & 0x0F)
        if b[0] & 0x10 != 0 {
            guard end + 4 <= b.count else { return nil }
            end += 4 + 4 * (Int(b[end + 2]) << 8 | Int(b[end + 3]))
        }
        return end <= b.count ? end : nil
    }

    /// The value of one-byte header extension `id` (RFC 8285 4.2) in a packet, without parsing the rest or
    /// allocating: for reading the transport-wide sequence number of every packet.
    public static func oneByteExtension(_ id: UInt8, in b: [UInt8]) -> ArraySlice<UInt8>? {
        guard let end = headerLength(b), b[0] & 0x10 != 0 else { return nil }
        let start = 12 + 4 * Int(b[0] & 0x0F)
        guard b[start] == 0xBE, b[start + 1] == 0xDE else { return nil }
        var i = start + 4
        while i < end {
            let byte = b[i]
            if byte == 0 { i += 1; continue }
            let elementID = byte >> 4, length = Int(byte & 0x0F) + 1
            if elementID == 15 || i + 1 + length > end { return nil }
            if elementID == id { return b[(i + 1)..<(i + 1 + length)] }
            i += 1 + length
        }
        return nil
    }

    static func u32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
    }

    /// RFC 8285 4.2: ID (4 bits) and L (length - 1), then the value; 0 bytes are padding; ID 15 stops parsing.
    static func oneByteElements(_ block: ArraySlice<UInt8>) throws(RTPError) -> [RTPHeader.Extension] {
        var out: [RTPHeader.Extension] = []
        var i = block.startIndex
        while i < block.endIndex {
            let b = block[i]
            if b == 0 { i += 1; continue }
            let id = b >> 4
            if id == 15 { break }
            let length = Int(b & 0x0F) + 1
            guard i + 1 + length <= block.endIndex else { throw .badExtension }
            out.append(.init(id: id, value: Array(block[(i + 1)..<(i + 1 + length)])))
            i += 1 + length
        }
        return out
    }

    /// RFC 8285 4.3: ID (8 bits), length (8 bits), value.
    static func twoByteElements(_ block: ArraySlice<UInt8>) throws(RTPError) -> [RTPHeader.Extension] {
        var out: [RTPHeader.Extension] = []
        var i = block.startIndex
        while i < block.endIndex {
            if block[i] == 0 { i += 1; continue }
            guard i + 2 <= block.endIndex else { throw .badExtension }
            let id = block[i], length = Int(block[i + 1])
            guard i + 2 + length <= block.endIndex else { throw .badExtension }
            out.append(.init(id: id, value: Array(block[(i + 2)..<(i + 2 + length)])))
            i += 2 + length
        }
        return out
    }

    /// The packet on the wire. Extensions use the one-byte form when every id is 1-14 and every value 1-16
    /// bytes, else the two-byte form. Padding is not written.
    public func write() -> [UInt8] {
        let h = header
        var out: [UInt8] = []
        out.reserveCapacity(12 + 4 * h.csrcs.count + payload.count + 32)
        let hasExtension = !h.extensions.isEmpty || h.otherExtension != nil
        out.append(0x80 | (hasExtension ? 0x10 : 0) | UInt8(min(h.csrcs.count, 15)))
        out.append((h.marker ? 0x80 : 0) | (h.payloadType & 0x7F))
        out += [UInt8(h.sequenceNumber >> 8), UInt8(h.sequenceNumber & 0xFF)]
        Self.append(h.timestamp, to: &out)
        Self.append(h.ssrc, to: &out)
        for c in h.csrcs.prefix(15) { Self.append(c, to: &out) }
        if let other = h.otherExtension {
            let padded = other.data + [UInt8](repeating: 0, count: (4 - other.data.count % 4) % 4)
            out += [UInt8(other.profile >> 8), UInt8(other.profile & 0xFF), UInt8((padded.count / 4) >> 8), UInt8((padded.count / 4) & 0xFF)]
            out += padded
        } else if !h.extensions.isEmpty {
            let oneByte = h.extensions.allSatisfy { (1...14).contains($0.id) && (1...16).contains($0.value.count) }
            var block: [UInt8] = []
            for e in h.extensions {
                if oneByte {
                    block.append(e.id << 4 | UInt8(e.value.count - 1))
                } else {
                    block += [e.id, UInt8(min(e.value.count, 255))]
                }
                block += e.value.prefix(255)
            }
            block += [UInt8](repeating: 0, count: (4 - block.count % 4) % 4)
            let profile: UInt16 = oneByte ? 0xBEDE : 0x1000
            out += [UInt8(profile >> 8), UInt8(profile & 0xFF), UInt8((block.count / 4) >> 8), UInt8((block.count / 4) & 0xFF)]
            out += block
        }
        out += payload
        return out
    }

    static func append(_ v: UInt32, to out: inout [UInt8]) {
        out += [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
    }
}
