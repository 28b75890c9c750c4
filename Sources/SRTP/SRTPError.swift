/// Why libsrtp refused a key or a packet.
public enum SRTPError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The master key and salt do not have the profile's length.
    case badKeyLength(expected: Int, got: Int)
    /// The packet's authentication tag does not check (tampered, or another key): dropped, never forwarded.
    case authenticationFailed
    /// A packet index already seen (or older than the replay window).
    case replayed
    /// Shorter than an RTP/RTCP header, or otherwise not a packet libsrtp can take.
    case malformed
    /// Another libsrtp status code.
    case failed(Int)

    init(status: Int) {
        switch status {
        case 7: self = .authenticationFailed   // srtp_err_status_auth_fail
        case 9, 10: self = .replayed           // replay_fail, replay_old
        case 2, 12: self = .malformed          // bad_param, parse_err
        default: self = .failed(status)
        }
    }

    public var description: String {
        switch self {
        case .badKeyLength(let e, let g): "SRTP master key and salt must be \(e) bytes, got \(g)"
        case .authenticationFailed: "SRTP authentication failed"
        case .replayed: "SRTP replay"
        case .malformed: "not an SRTP/SRTCP packet"
        case .failed(let s): "libsrtp error \(s)"
        }
    }
}
