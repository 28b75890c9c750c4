/// Why bytes are not an acceptable RTP or RTCP packet.
public enum RTPError: Error, Equatable, Sendable {
    /// Shorter than the fixed header (12 bytes for RTP, 4 for an RTCP packet, or what the type needs).
    case truncated(needed: Int, available: Int)
    /// The version field is not 2.
    case badVersion(UInt8)
    /// The CSRC list, header extension or padding runs past the end of the packet.
    case headerOverrun
    /// The padding count is zero or larger than the payload (RFC 3550 5.1).
    case badPadding(UInt8)
    /// A header extension element overruns its block, or uses a reserved id (RFC 8285 4.2: 15 in one-byte form).
    case badExtension
    /// An RTCP length field that does not fit the compound packet (RFC 3550 6.4, A.2).
    case badLength(declared: Int, available: Int)
    /// An RTCP packet whose body does not match its type (report count beyond its length, FCI not a
    /// multiple of its entry size).
    case malformed(packetType: UInt8)
    /// An RTCP compound packet with no packet in it.
    case empty
}
