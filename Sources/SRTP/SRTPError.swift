/// Why an SRTP context refused a key or a packet.
public enum SRTPError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The master key and salt do not have the profile's length.
    case badKeyLength(expected: Int, got: Int)
    /// The packet's authentication tag does not check (tampered, or another key): dropped, never forwarded.
    case authenticationFailed
    /// A packet index already seen (or older than the replay window).
    case replayed
    /// Shorter than an RTP/RTCP header and the tag, a header that overruns the packet, or AES-CM SRTCP not encrypted.
    case malformed
    /// More SSRCs than a context keeps state for (``SRTPContext/maximumStreams``).
    case tooManyStreams
    /// An SSRC has sent 2^31 - 1 SRTCP packets: the session needs new keys.
    case indexExhausted
    /// OpenSSL refused a key or failed to run a cipher.
    case cipherFailed
    /// Another libsrtp status code (the ``LibSRTP`` oracle).
    case failed(Int)

    public var description: String {
        switch self {
        case .badKeyLength(let e, let g): "SRTP master key and salt must be \(e) bytes, got \(g)"
        case .authenticationFailed: "SRTP authentication failed"
        case .replayed: "SRTP replay"
        case .malformed: "not an SRTP/SRTCP packet"
        case .tooManyStreams: "too many SSRCs on one SRTP session"
        case .indexExhausted: "SRTCP index space used up"
        case .cipherFailed: "OpenSSL cipher failure"
        case .failed(let s): "libsrtp error \(s)"
        }
    }
}
