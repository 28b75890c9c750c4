/// Reassembles H.264 access units from RTP payloads in packetization mode 1 (RFC 6184): single NAL unit packets,
/// STAP-A and FU-A, an access unit ending at the marker bit. Used by tests and benchmarks to read back what the
/// server sends; packets must come in sequence order (a gap drops the access unit it falls in).
public struct H264Depacketizer: Sendable {
    public struct AccessUnit: Sendable, Equatable {
        public var timestamp: UInt32
        public var nalUnits: [[UInt8]]
    }

    public enum Failure: Error, Equatable, Sendable {
        /// A STAP-A whose sizes run past its end, or an empty aggregate.
        case badAggregate
        /// An FU-A shorter than its two header bytes, a middle fragment with no start, a start while one is open, or
        /// both start and end bits set.
        case badFragment
        /// A NAL unit type that packetization mode 1 does not use (STAP-B, MTAP, FU-B, reserved types), also inside a
        /// STAP-A or an FU-A.
        case unsupported(UInt8)
        /// A packet that is not the next in sequence: the access unit in progress is dropped.
        case gap(expected: UInt16, got: UInt16)
    }

    var nalUnits: [[UInt8]] = []
    var fragment: [UInt8]?
    var timestamp: UInt32?
    var expected: UInt16?
    var broken = false

    public init() {}

    /// One RTP packet's payload. Returns the access unit this packet completes (marker set), unless a
    /// failure was seen within it; throws for the packet that fails (the rest of its access unit is dropped).
    public mutating func push(sequenceNumber: UInt16, timestamp ts: UInt32, marker: Bool,
                              payload: ArraySlice<UInt8>) throws(Failure) -> AccessUnit? {
        defer { expected = sequenceNumber &+ 1 }
        if let e = expected, e != sequenceNumber {
            // What was lost may belong to this packet's access unit: it is dropped up to its marker.
            reset()
            if !marker {
                timestamp = ts
                broken = true
            }
            throw .gap(expected: e, got: sequenceNumber)
        }
        if timestamp != ts {
            // A new timestamp starts a new access unit, even when the previous one lost its marker.
            reset()
            timestamp = ts
        }
        if broken {
            // The rest of an access unit that lost a packet: not looked at.
            if marker { reset() }
            return nil
        }
        do {
            try add(payload)
        } catch {
            broken = true
            if marker { reset() }
            throw error
        }
        guard marker else { return nil }
        defer { reset() }
        if broken || fragment != nil || nalUnits.isEmpty { return nil }
        return AccessUnit(timestamp: ts, nalUnits: nalUnits)
    }

    mutating func reset() {
        nalUnits = []
        fragment = nil
        broken = false
        timestamp = nil
    }

    mutating func add(_ p: ArraySlice<UInt8>) throws(Failure) {
        guard let first = p.first else { throw .badAggregate }
        switch first & 0x1F {
        case 1...23:
            nalUnits.append(Array(p))
        case H264RTP.stapA:
            var i = p.startIndex + 1
            guard i < p.endIndex else { throw .badAggregate }
            while i < p.endIndex {
                guard i + 2 <= p.endIndex else { throw .badAggregate }
                let size = Int(p[i]) << 8 | Int(p[i + 1])
                i += 2
                guard size > 0, i + size <= p.endIndex else { throw .badAggregate }
                try Self.checkType(p[i])
                nalUnits.append(Array(p[i..<(i + size)]))
                i += size
            }
        case H264RTP.fuA:
            guard p.count > 2 else { throw .badFragment }
            let header = p[p.startIndex + 1]
            let start = header & 0x80 != 0, end = header & 0x40 != 0
            // RFC 6184 5.8: a NAL unit small enough for one packet is not fragmented.
            guard !(start && end) else { throw .badFragment }
            try Self.checkType(header)
            if start {
                guard fragment == nil else { throw .badFragment }
                fragment = [first & 0xE0 | header & 0x1F]
            }
            guard fragment != nil else { throw .badFragment }
            fragment! += p.dropFirst(2)
            if end {
                nalUnits.append(fragment!)
                fragment = nil
            }
        default:
            throw .unsupported(first & 0x1F)
        }
    }

    /// A NAL unit inside an aggregate or a fragment must be one a decoder reads (types 1-23): 0 is unspecified,
    /// 24-31 exist only as RTP payload structures, and sent on as a NAL unit they would be read as one.
    static func checkType(_ header: UInt8) throws(Failure) {
        guard (1...23).contains(header & 0x1F) else { throw .unsupported(header & 0x1F) }
    }
}
