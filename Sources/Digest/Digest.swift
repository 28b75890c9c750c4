import CDigest

/// MD5, SHA-1, SHA-256 and HMAC, one-shot, from OpenSSL's libcrypto (`CDigest`), for the wire codecs: TURN's
/// long-term key, STUN's MESSAGE-INTEGRITY, the RTMP handshake's digests, CMAF chunk hashes and the P2P info hash.
///
/// libcrypto is linked for DTLS already; taking these from it too spares every build a second copy of BoringSSL.
/// A failure inside libcrypto for these algorithms means a broken installation, not bad input, and stops the
/// process with the reason rather than let a wrong digest through.
public enum Digest {
    public static func md5(_ bytes: [UInt8]) -> [UInt8] { bytes.withUnsafeBytes { one(LS_MD5, $0) } }

    public static func sha1(_ bytes: [UInt8]) -> [UInt8] { bytes.withUnsafeBytes { one(LS_SHA1, $0) } }

    public static func sha256(_ bytes: [UInt8]) -> [UInt8] { bytes.withUnsafeBytes { sha256($0) } }

    public static func sha256(_ buffer: UnsafeRawBufferPointer) -> [UInt8] { one(LS_SHA256, buffer) }

    public static func hmacSHA1(key: [UInt8], _ bytes: [UInt8]) -> [UInt8] { hmac(LS_SHA1, key, bytes) }

    public static func hmacSHA256(key: [UInt8], _ bytes: [UInt8]) -> [UInt8] { hmac(LS_SHA256, key, bytes) }

    static func one(_ algorithm: ls_digest_algorithm, _ buffer: UnsafeRawBufferPointer) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        let n = withNonNullBase(buffer) { ls_digest(algorithm, $0, buffer.count, &out) }
        precondition(n > 0, "OpenSSL's libcrypto could not compute a digest (algorithm \(algorithm.rawValue))")
        return Array(out.prefix(n))
    }

    static func hmac(_ algorithm: ls_digest_algorithm, _ key: [UInt8], _ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        let n = key.withUnsafeBytes { k in
            bytes.withUnsafeBytes { b in
                withNonNullBase(b) { ls_hmac(algorithm, k.baseAddress, k.count, $0, b.count, &out) }
            }
        }
        precondition(n > 0, "OpenSSL's libcrypto could not compute an HMAC (algorithm \(algorithm.rawValue))")
        return Array(out.prefix(n))
    }

    /// An empty Swift buffer may have no address; libcrypto wants one even for zero bytes.
    static func withNonNullBase<R>(_ buffer: UnsafeRawBufferPointer, _ body: (UnsafeRawPointer) -> R) -> R {
        if let base = buffer.baseAddress { return body(base) }
        var zero: UInt8 = 0
        return withUnsafeBytes(of: &zero) { body($0.baseAddress!) }
    }
}
