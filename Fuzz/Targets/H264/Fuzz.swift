import FuzzSupport
import RTP

/// The H.264 depacketizer (RFC 6184 mode 1) that turns a WHIP publisher's packets back into access units for the
/// hub. The input is a run of packets, each `flags, length (1 byte), payload`: flags bit 0 the marker, bit 1 a new
/// timestamp, bit 2 a skipped sequence number. Every access unit it gives back is packetized again by the server's
/// packetizer and must depacketize to the same NAL units.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = UnsafeBufferPointer(start: data, count: size)[...]
    var depacketizer = H264Depacketizer()
    var seq: UInt16 = 65_530
    var ts: UInt32 = 0
    while let flags = input.popFirst(), let length = input.popFirst() {
        let payload = Array(input.prefix(Int(length)))
        input = input.dropFirst(Int(length))
        if flags & 2 != 0 { ts &+= 3000 }
        if flags & 4 != 0 { seq &+= 1 }
        defer { seq &+= 1 }
        guard let unit = try? depacketizer.push(sequenceNumber: seq, timestamp: ts, marker: flags & 1 != 0, payload: payload[...]) else {
            continue
        }
        check(unit.timestamp == ts && !unit.nalUnits.isEmpty, "\(unit)")
        for nal in unit.nalUnits {
            check(!nal.isEmpty, "an empty NAL unit in \(unit.nalUnits)")
            check((1...23).contains(nal[0] & 0x1F), "NAL unit type \(nal[0] & 0x1F) in an access unit: \(unit.nalUnits)")
        }
        // AUDs and filler are left out when sending; the rest comes back as it was.
        let sent = unit.nalUnits.filter { $0[0] & 0x1F != 9 && $0[0] & 0x1F != 12 }
        guard !sent.isEmpty else { continue }
        let packets = H264RTP.packetize(sent, maxPayload: 16 + Int(flags >> 3) * 37)
        var again = H264Depacketizer()
        var back: H264Depacketizer.AccessUnit?
        for (i, p) in packets.enumerated() {
            do {
                back = try again.push(sequenceNumber: UInt16(i), timestamp: 7, marker: i == packets.count - 1, payload: p[...])
            } catch {
                fatalError("the server's own packets do not depacketize: \(error), NAL units \(sent)")
            }
        }
        check(back?.nalUnits == sent, "packetized and depacketized: \(sent) -> \(String(describing: back?.nalUnits))")
    }
    return 0
}
