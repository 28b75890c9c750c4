/// H.264 over RTP, packetization mode 1 (RFC 6184 5.6-5.8, non-interleaved): single NAL unit packets, STAP-A
/// aggregation and FU-A fragmentation. Pure: NAL units in, RTP payloads out.
public enum H264RTP {
    /// NAL unit types of RFC 6184 5.4 that exist only in RTP payloads.
    public static let stapA: UInt8 = 24
    public static let fuA: UInt8 = 28

    /// Largest RTP payload by default: 1200 bytes, what libwebrtc uses, so a packet with its 12-byte header, the
    /// SRTP tag and the IPv6/UDP headers stays under a 1280-byte path MTU (the IPv6 minimum).
    public static let defaultMaxPayload = 1200

    /// NAL unit types never sent over RTP: access unit delimiters and filler data carry nothing a WebRTC receiver
    /// uses (RFC 6184 leaves them optional; the marker bit delimits access units); nor do the types H.264 leaves
    /// unspecified (0 and 24-31, which decoders ignore), and sent as single NAL unit packets those would be read as
    /// STAP-A, FU-A and the other RTP payload structures that use the same numbers.
    static func isDropped(_ type: UInt8) -> Bool { type == 9 || type == 12 || !(1...23).contains(type) }

    /// The RTP payloads of one access unit, in sending order; the last one carries the marker bit.
    ///
    /// - `parameterSets`: SPS and PPS to send first in one STAP-A (RFC 6184 5.7.1), as a receiver joining at this
    ///   IDR needs them. When the STAP-A would not fit `maxPayload`, each goes in a packet of its own.
    /// - Each NAL unit up to `maxPayload` bytes is a single NAL unit packet (5.6); a larger one is cut into FU-A
    ///   fragments (5.8), each at most `maxPayload` bytes. Empty NAL units, AUDs, filler and unspecified types are
    ///   left out.
    public static func packetize<S: Collection<UInt8>>(_ nalUnits: [S], parameterSets: [[UInt8]] = [],
                                                       maxPayload: Int = defaultMaxPayload) -> [[UInt8]] {
        precondition(maxPayload >= 16, "maxPayload \(maxPayload) leaves no room for FU-A fragments")
        var out: [[UInt8]] = []
        let sets = parameterSets.filter { !$0.isEmpty }
        if !sets.isEmpty {
            let size = 1 + sets.reduce(0) { $0 + 2 + $1.count }
            if sets.count > 1 && size <= maxPayload && sets.allSatisfy({ $0.count <= 0xFFFF }) {
                // F is the OR of the aggregated units' F bits, NRI their maximum (5.7).
                let f = sets.reduce(UInt8(0)) { $0 | $1[0] & 0x80 }
                let nri = sets.map { $0[0] & 0x60 }.max()!
                var p: [UInt8] = [f | nri | stapA]
                p.reserveCapacity(size)
                for s in sets {
                    p += [UInt8(s.count >> 8), UInt8(s.count & 0xFF)]
                    p += s
                }
                out.append(p)
            } else {
                for s in sets { append(s, maxPayload: maxPayload, to: &out) }
            }
        }
        for nal in nalUnits where !nal.isEmpty && !isDropped(nal.first! & 0x1F) {
            append(nal, maxPayload: maxPayload, to: &out)
        }
        return out
    }

    static func append<S: Collection<UInt8>>(_ nal: S, maxPayload: Int, to out: inout [[UInt8]]) {
        if nal.count <= maxPayload {
            out.append(Array(nal))
            return
        }
        let header = nal.first!
        let indicator = header & 0xE0 | fuA
        let type = header & 0x1F
        var rest = nal.dropFirst()
        let chunk = maxPayload - 2
        var first = true
        while !rest.isEmpty {
            let piece = rest.prefix(chunk)
            rest = rest.dropFirst(piece.count)
            let fuHeader = (first ? 0x80 : 0) | (rest.isEmpty ? 0x40 : 0) | type
            var p: [UInt8] = [indicator, fuHeader]
            p.reserveCapacity(2 + piece.count)
            p += piece
            out.append(p)
            first = false
        }
    }
}
