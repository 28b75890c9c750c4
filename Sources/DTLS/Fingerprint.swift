/// A certificate fingerprint as SDP carries it (`a=fingerprint:sha-256 AB:CD:...`, RFC 8122 section 5). Only
/// SHA-256 is made or checked: it is what every browser offers.
public struct Fingerprint: Hashable, Sendable, CustomStringConvertible {
    /// 32 bytes.
    public let bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == 32 else { return nil }
        self.bytes = bytes
    }

    /// Parses the attribute's value, `sha-256 AB:CD:...` (the hash name is case-insensitive). Nil for another
    /// hash function or a malformed value.
    public init?(sdp value: String) {
        let parts = value.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "sha-256" else { return nil }
        let hex = parts[1].split(separator: ":", omittingEmptySubsequences: false)
        guard hex.count == 32 else { return nil }
        var out: [UInt8] = []
        for h in hex {
            guard h.count == 2, let b = UInt8(h, radix: 16) else { return nil }
            out.append(b)
        }
        bytes = out
    }

    /// `sha-256 AB:CD:...`, upper-case as browsers write it.
    public var sdpValue: String {
        "sha-256 " + bytes.map { b in
            let s = String(b, radix: 16, uppercase: true)
            return s.count == 1 ? "0" + s : s
        }.joined(separator: ":")
    }

    public var description: String { sdpValue }
}
