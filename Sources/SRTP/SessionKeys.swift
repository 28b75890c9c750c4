import DTLS

/// The session keys of one direction of SRTP or SRTCP, derived from the master key and salt (RFC 3711 4.3, with the
/// AES-CM PRF of 4.3.3; RFC 7714 11 for AES-GCM, whose 12-byte master salt is taken as the 14-byte one with two zero
/// bytes after it, as libsrtp does).
///
/// The key derivation rate is 0 (DTLS-SRTP, RFC 5764 4.1.2): the keys are derived once, so r = index DIV kdr is 0
/// and key_id is the label alone.
struct SessionKeys: Equatable {
    var encryption: [UInt8]
    /// HMAC-SHA1's key (20 bytes) for AES-CM; empty for AES-GCM, whose tag is the cipher's.
    var authentication: [UInt8]
    /// 14 bytes for AES-CM (shifted into the IV's first 112 bits), 12 for AES-GCM.
    var salt: [UInt8]

    /// RFC 3711 4.3.2's labels.
    enum Label: UInt8 {
        case rtpEncryption = 0, rtpAuthentication, rtpSalt, rtcpEncryption, rtcpAuthentication, rtcpSalt
    }

    init(encryption: [UInt8], authentication: [UInt8], salt: [UInt8]) {
        (self.encryption, self.authentication, self.salt) = (encryption, authentication, salt)
    }

    /// `masterKey` is the master key followed by the master salt (``SRTPKeys/local`` or ``SRTPKeys/remote``).
    init(profile: SRTPProfile, masterKey: [UInt8], rtcp: Bool) throws(SRTPError) {
        let prf = try CounterCipher(key: Array(masterKey[0..<profile.keyLength]))
        var masterSalt = Array(masterKey[profile.keyLength...])
        masterSalt += repeatElement(0, count: 14 - masterSalt.count)
        let offset: UInt8 = rtcp ? 3 : 0
        encryption = try Self.derive(prf, masterSalt, label: Label.rtpEncryption.rawValue + offset, count: 16)
        authentication = profile == .aes128CmHmacSha1_80
            ? try Self.derive(prf, masterSalt, label: Label.rtpAuthentication.rawValue + offset, count: 20) : []
        salt = try Self.derive(prf, masterSalt, label: Label.rtpSalt.rawValue + offset, count: profile.saltLength)
    }

    /// The first `count` bytes of AES-CM's keystream from x = (label << 48) XOR master salt, times 2^16.
    static func derive(_ prf: CounterCipher, _ masterSalt: [UInt8], label: UInt8, count: Int) throws(SRTPError) -> [UInt8] {
        var iv = masterSalt + [0, 0]
        iv[7] ^= label
        var out = [UInt8](repeating: 0, count: count)
        let ok = iv.withUnsafeBufferPointer { i in
            out.withUnsafeMutableBufferPointer { o in prf.apply(iv: i.baseAddress!, o.baseAddress, count: count, into: o.baseAddress) }
        }
        guard ok else { throw .cipherFailed }
        return out
    }
}
