import NIOCore
import Testing

/// Test-only MPEG-TS reader: validates framing and continuity, collects PAT/PMT and PES packets.
struct TSTestParser {
    struct Packet {
        var pid: UInt16
        var payloadUnitStart: Bool
        var continuityCounter: UInt8
        var adaptationField: [UInt8]?  // bytes after adaptation_field_length
        var payload: [UInt8]
        var randomAccess: Bool { (adaptationField?.first ?? 0) & 0x40 != 0 }
        var pcr: Int64? {
            guard let af = adaptationField, af.count >= 7, af[0] & 0x10 != 0 else { return nil }
            var base: Int64 = 0
            for i in 1...4 { base = base << 8 | Int64(af[i]) }
            return base << 1 | Int64(af[5] >> 7)
        }
    }

    struct PES {
        var pid: UInt16
        var streamID: UInt8
        var packetLength: Int
        var pts: Int64?
        var dts: Int64?
        var payload: [UInt8]
        var randomAccess: Bool
        var pcr: Int64?
    }

    var packets: [Packet] = []
    var pat: [UInt16: UInt16] = [:]  // program -> PMT PID
    var pcrPID: UInt16?
    var streamTypes: [UInt16: UInt8] = [:]
    var pes: [PES] = []

    static func timestamp(_ b: ArraySlice<UInt8>) -> Int64 {
        let b = Array(b)
        #expect(b[0] & 1 == 1 && b[2] & 1 == 1 && b[4] & 1 == 1, "marker bits")
        return Int64(b[0] >> 1 & 0x07) << 30 | Int64(b[1]) << 22 | Int64(b[2] >> 1) << 15 | Int64(b[3]) << 7 | Int64(b[4] >> 1)
    }

    init(_ data: [UInt8]) throws {
        try #require(data.count % 188 == 0, "size \(data.count) not a multiple of 188")
        var lastCC: [UInt16: UInt8] = [:]
        var open: [UInt16: (Packet, [UInt8])] = [:]
        for start in stride(from: 0, to: data.count, by: 188) {
            let p = Array(data[start..<start + 188])
            try #require(p[0] == 0x47, "sync byte at \(start)")
            let pid = UInt16(p[1] & 0x1F) << 8 | UInt16(p[2])
            let pusi = p[1] & 0x40 != 0
            let afc = p[3] >> 4 & 3
            let cc = p[3] & 0x0F
            try #require(afc != 0, "reserved adaptation_field_control")
            var index = 4
            var af: [UInt8]?
            if afc & 2 != 0 {
                let length = Int(p[4])
                try #require(5 + length <= 188, "adaptation field too long")
                af = Array(p[5..<5 + length])
                index = 5 + length
                if afc == 2 { try #require(length == 183) }
            }
            let payload = afc & 1 != 0 ? Array(p[index...]) : []
            if afc & 1 != 0 {
                if let last = lastCC[pid] { #expect(cc == (last + 1) & 0x0F, "CC on PID \(pid): \(last) -> \(cc)") }
                lastCC[pid] = cc
            }
            let packet = Packet(pid: pid, payloadUnitStart: pusi, continuityCounter: cc, adaptationField: af, payload: payload)
            packets.append(packet)

            if pid == 0 || pat.values.contains(pid) {
                try #require(pusi)
                try parseSection(payload, pid: pid)
            } else if pid != 0x1FFF {
                if pusi {
                    if let (first, bytes) = open[pid] { try finishPES(first, bytes) }
                    open[pid] = (packet, payload)
                } else {
                    try #require(open[pid] != nil, "continuation without start on \(pid)")
                    open[pid]!.1 += payload
                }
            }
        }
        for (_, (first, bytes)) in open.sorted(by: { $0.key < $1.key }) { try finishPES(first, bytes) }
        pes.sort { ($0.pid, $0.dts ?? $0.pts ?? 0) < ($1.pid, $1.dts ?? $1.pts ?? 0) }
    }

    mutating func parseSection(_ payload: [UInt8], pid: UInt16) throws {
        let pointer = Int(payload[0])
        let s = Array(payload[(1 + pointer)...])
        let length = Int(s[1] & 0x0F) << 8 | Int(s[2])
        let section = Array(s[0..<3 + length])
        #expect(Self.crc(section) == 0, "CRC on PID \(pid)")
        #expect(s[(3 + length)...].allSatisfy { $0 == 0xFF }, "PSI stuffing")
        if s[0] == 0x00 {
            var i = 8
            while i + 4 <= section.count - 4 {
                pat[UInt16(section[i]) << 8 | UInt16(section[i + 1])] = UInt16(section[i + 2] & 0x1F) << 8 | UInt16(section[i + 3])
                i += 4
            }
        } else if s[0] == 0x02 {
            pcrPID = UInt16(section[8] & 0x1F) << 8 | UInt16(section[9])
            let infoLength = Int(section[10] & 0x0F) << 8 | Int(section[11])
            var i = 12 + infoLength
            while i + 5 <= section.count - 4 {
                streamTypes[UInt16(section[i + 1] & 0x1F) << 8 | UInt16(section[i + 2])] = section[i]
                i += 5 + (Int(section[i + 3] & 0x0F) << 8 | Int(section[i + 4]))
            }
        } else {
            Issue.record("unexpected table \(s[0])")
        }
    }

    mutating func finishPES(_ first: Packet, _ b: [UInt8]) throws {
        try #require(b.count >= 9 && b[0] == 0 && b[1] == 0 && b[2] == 1, "PES start code on \(first.pid)")
        let length = Int(b[4]) << 8 | Int(b[5])
        #expect(b[6] & 0xC0 == 0x80, "PES '10' marker")
        let flags = b[7] >> 6
        let headerLength = Int(b[8])
        var pts: Int64?, dts: Int64?
        if flags & 2 != 0 {
            #expect(b[9] >> 4 == (flags == 3 ? 3 : 2), "PTS prefix")
            pts = Self.timestamp(b[9..<14])
        }
        if flags == 3 {
            #expect(b[14] >> 4 == 1, "DTS prefix")
            dts = Self.timestamp(b[14..<19])
        }
        if length != 0 { #expect(length == b.count - 6, "PES_packet_length \(length) vs \(b.count - 6)") }
        pes.append(PES(pid: first.pid, streamID: b[3], packetLength: length, pts: pts, dts: dts,
                       payload: Array(b[(9 + headerLength)...]), randomAccess: first.randomAccess, pcr: first.pcr))
    }

    static func crc(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte) << 24
            for _ in 0..<8 { crc = crc & 0x8000_0000 != 0 ? crc << 1 ^ 0x04C1_1DB7 : crc << 1 }
        }
        return crc
    }
}
