import CSRTP
import DTLS
import SRTP

/// SRTP and SRTCP (RFC 3711, RFC 7714 for AES-GCM) for one direction of one transport, through Debian's libsrtp2
/// (2.5, built on NSS). The server protects with ``SRTP/SRTPContext`` (OpenSSL's ciphers); this is the oracle the
/// tests hold it to, byte for byte, and what `liveswarm-bench srtp` measures it against. Chromium and Firefox
/// protect with libsrtp too.
/// An outbound context protects everything we send on the transport, whatever the SSRC; an inbound one
/// unprotects everything the peer sends, with a replay window. Outbound contexts allow repeated transmission,
/// so a packet retransmitted for a NACK can be protected again with the same index.
///
/// Not thread-safe: one event loop owns it.
public final class LibSRTPContext {
    public typealias Direction = SRTPContext.Direction

    /// Room libsrtp may add after a packet: tag, MKI, and for SRTCP the index (SRTP_MAX_TRAILER_LEN + 4).
    public static let maximumTrailer = 148

    public let profile: SRTPProfile
    public let direction: Direction
    let session: srtp_t

    static let initialized: Bool = srtp_init() == srtp_err_status_ok

    /// `masterKey` is the master key followed by the master salt (``SRTPKeys/local`` or ``SRTPKeys/remote``).
    /// `rtcpEncrypted` false sends SRTCP authenticated only (E bit 0), to test receivers with.
    public init(profile: SRTPProfile, masterKey: [UInt8], direction: Direction, replayWindow: Int = 1024,
                rtcpEncrypted: Bool = true) throws(SRTPError) {
        guard Self.initialized else { throw .failed(-1) }
        let length = profile.keyLength + profile.saltLength
        guard masterKey.count == length else { throw .badKeyLength(expected: length, got: masterKey.count) }
        var policy = srtp_policy_t()
        switch profile {
        case .aes128CmHmacSha1_80:
            srtp_crypto_policy_set_rtp_default(&policy.rtp)
            srtp_crypto_policy_set_rtp_default(&policy.rtcp)
        case .aeadAes128Gcm:
            srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp)
            srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp)
        }
        if !rtcpEncrypted { policy.rtcp.sec_serv = sec_serv_auth }
        policy.ssrc.type = direction == .inbound ? ssrc_any_inbound : ssrc_any_outbound
        policy.window_size = UInt(replayWindow)
        policy.allow_repeat_tx = direction == .outbound ? 1 : 0
        var key = masterKey
        var created: srtp_t?
        let status = key.withUnsafeMutableBufferPointer { k -> srtp_err_status_t in
            policy.key = k.baseAddress
            return srtp_create(&created, &policy)
        }
        guard status == srtp_err_status_ok, let created else { throw SRTPError(libsrtpStatus: Int(status.rawValue)) }
        self.profile = profile
        self.direction = direction
        self.session = created
    }

    deinit { srtp_dealloc(session) }

    /// Encrypts and authenticates an RTP packet in place (it grows by the tag).
    public func protectRTP(_ packet: inout [UInt8]) throws(SRTPError) {
        try run(&packet, grow: true) { srtp_protect(session, $0, $1) }
    }

    /// Checks and decrypts an SRTP packet in place (it shrinks by the tag).
    public func unprotectRTP(_ packet: inout [UInt8]) throws(SRTPError) {
        try run(&packet, grow: false) { srtp_unprotect(session, $0, $1) }
    }

    public func protectRTCP(_ packet: inout [UInt8]) throws(SRTPError) {
        try run(&packet, grow: true) { srtp_protect_rtcp(session, $0, $1) }
    }

    public func unprotectRTCP(_ packet: inout [UInt8]) throws(SRTPError) {
        try run(&packet, grow: false) { srtp_unprotect_rtcp(session, $0, $1) }
    }

    func run(_ packet: inout [UInt8], grow: Bool,
             _ call: (UnsafeMutableRawPointer, UnsafeMutablePointer<Int32>) -> srtp_err_status_t) throws(SRTPError) {
        // libsrtp reads the header before checking the length: refuse what cannot be a header.
        guard packet.count >= 8, packet.count <= 65535 else { throw .malformed }
        var length = Int32(packet.count)
        if grow { packet.append(contentsOf: repeatElement(0, count: Self.maximumTrailer)) }
        let status = packet.withUnsafeMutableBytes { call($0.baseAddress!, &length) }
        guard status == srtp_err_status_ok else {
            if grow { packet.removeLast(Self.maximumTrailer) }
            throw SRTPError(libsrtpStatus: Int(status.rawValue))
        }
        packet.removeLast(packet.count - Int(length))
    }
}

extension SRTPError {
    init(libsrtpStatus status: Int) {
        switch status {
        case 7: self = .authenticationFailed   // srtp_err_status_auth_fail
        case 9, 10: self = .replayed           // replay_fail, replay_old
        case 2, 12: self = .malformed          // bad_param, parse_err
        default: self = .failed(status)
        }
    }
}
