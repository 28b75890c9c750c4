/// Why a certificate could not be made or loaded, or a DTLS association failed.
public enum DTLSError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Generating or loading the certificate failed (OpenSSL's reason).
    case certificate(String)
    /// OpenSSL ran out of memory creating an association.
    case outOfMemory
    /// The handshake failed (OpenSSL's reason: a bad record, no shared cipher or SRTP profile...).
    case handshake(String)
    /// The retransmission timer ran out before the handshake finished.
    case timedOut
    /// The peer's certificate is not the one its SDP named (RFC 8827 6.5).
    case fingerprintMismatch(expected: Fingerprint, got: Fingerprint?)
    /// The handshake finished without `use_srtp` (RFC 5764): the peer cannot do SRTP with us.
    case noSRTPProfile

    public var description: String {
        switch self {
        case .certificate(let why): "certificate: \(why)"
        case .outOfMemory: "out of memory"
        case .handshake(let why): why
        case .timedOut: "DTLS handshake timed out"
        case .fingerprintMismatch(let expected, let got):
            "the peer's certificate \(got.map { "has fingerprint \($0)" } ?? "is missing"), its SDP said \(expected)"
        case .noSRTPProfile: "the peer negotiated no SRTP protection profile"
        }
    }
}
