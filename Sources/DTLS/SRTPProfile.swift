/// The SRTP protection profiles LiveSwarm negotiates in DTLS `use_srtp` (RFC 5764 4.1.2, RFC 7714 14.2),
/// AEAD first.
public enum SRTPProfile: UInt16, Sendable, Equatable, CaseIterable, CustomStringConvertible {
    case aes128CmHmacSha1_80 = 0x0001
    case aeadAes128Gcm = 0x0007

    /// Master key and salt lengths in bytes.
    public var keyLength: Int { 16 }
    public var saltLength: Int { self == .aeadAes128Gcm ? 12 : 14 }

    /// The IANA registry name (as `RTCTransportStats.srtpCipher` reports it).
    public var description: String { self == .aeadAes128Gcm ? "SRTP_AEAD_AES_128_GCM" : "SRTP_AES128_CM_HMAC_SHA1_80" }
}

/// The SRTP master keys one end of a DTLS-SRTP association uses (RFC 5764 4.2): what it protects with
/// (`local`) and what it unprotects with (`remote`), each the master key followed by the master salt.
public struct SRTPKeys: Sendable, Equatable {
    public var profile: SRTPProfile
    public var local: [UInt8]
    public var remote: [UInt8]

    public init(profile: SRTPProfile, local: [UInt8], remote: [UInt8]) {
        (self.profile, self.local, self.remote) = (profile, local, remote)
    }

    /// Splits the exported keying material, laid out client key, server key, client salt, server salt.
    init(profile: SRTPProfile, material m: [UInt8], isServer: Bool) {
        let k = profile.keyLength, s = profile.saltLength
        let clientKey = Array(m[0..<k]), serverKey = Array(m[k..<(2 * k)])
        let clientSalt = Array(m[(2 * k)..<(2 * k + s)]), serverSalt = Array(m[(2 * k + s)..<(2 * k + 2 * s)])
        self.profile = profile
        local = isServer ? serverKey + serverSalt : clientKey + clientSalt
        remote = isServer ? clientKey + clientSalt : serverKey + serverSalt
    }
}
