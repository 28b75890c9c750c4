/// Why bytes are not an acceptable STUN message (RFC 8489 section 6.3 and 14).
public enum STUNError: Error, Equatable, Sendable {
    /// Fewer than the 20 bytes of a header.
    case truncatedHeader
    /// The two most significant bits of the message type are not zero (RFC 7983: not STUN).
    case notSTUN
    /// The magic cookie is not 0x2112A442 (an RFC 3489 message, or not STUN at all).
    case wrongMagicCookie
    /// The length field is not a multiple of 4, or does not match the bytes given.
    case badLength(declared: Int, available: Int)
    /// Larger than the parser's limit.
    case messageTooLarge(Int)
    /// An attribute's length runs past the end of the message.
    case attributeOverrun(type: UInt16)
    /// A second MESSAGE-INTEGRITY (RFC 8489 14.5: the first one counts; two are malformed).
    case duplicateMessageIntegrity
    /// An attribute after FINGERPRINT, which must be last (RFC 8489 14.7).
    case attributeAfterFingerprint
    /// An attribute whose value has the wrong size or form for its type.
    case malformedAttribute(type: UInt16)
}
