import CDTLS

/// The server's DTLS identity: an ECDSA P-256 key and a self-signed certificate, with the OpenSSL context every
/// association is made from. Made once at start (or loaded from PEM) and shared by all sessions; its
/// fingerprint goes into every SDP answer.
public final class Certificate: @unchecked Sendable {
    // The context is only read after init (SSL_new is thread-safe on a configured SSL_CTX).
    let context: OpaquePointer
    public let fingerprint: Fingerprint

    /// A fresh key and certificate, valid from a day ago for `validDays` (browsers do not check the dates of
    /// WebRTC certificates, but other peers might).
    public convenience init(validDays: Int = 365) throws(DTLSError) {
        try self.init(pem: nil, validDays: validDays)
    }

    /// A certificate and its unencrypted private key, both PEM.
    public convenience init(certificatePEM: String, keyPEM: String) throws(DTLSError) {
        try self.init(pem: (certificatePEM, keyPEM), validDays: 0)
    }

    init(pem: (String, String)?, validDays: Int) throws(DTLSError) {
        var error = [CChar](repeating: 0, count: 256)
        let made: OpaquePointer? = error.withUnsafeMutableBufferPointer { e in
            if let (cert, key) = pem {
                return ls_dtls_context_new(cert, key, 0, e.baseAddress, e.count)
            }
            return ls_dtls_context_new(nil, nil, Int32(validDays), e.baseAddress, e.count)
        }
        guard let made else {
            throw .certificate(String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        var digest = [UInt8](repeating: 0, count: 32)
        guard ls_dtls_context_fingerprint(made, &digest) == 1, let fingerprint = Fingerprint(bytes: digest) else {
            ls_dtls_context_free(made)
            throw .certificate("no SHA-256 fingerprint")
        }
        self.context = made
        self.fingerprint = fingerprint
    }

    deinit { ls_dtls_context_free(context) }

    /// The certificate as PEM (to keep it across restarts).
    public var certificatePEM: String { pem(key: false) }
    /// The private key as unencrypted PEM.
    public var keyPEM: String { pem(key: true) }

    func pem(key: Bool) -> String {
        var out = [CChar](repeating: 0, count: 4096)
        let n = ls_dtls_context_pem(context, key ? 1 : 0, &out, out.count)
        guard n > 0 else { return "" }
        return String(decoding: out.prefix(Int(n)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
