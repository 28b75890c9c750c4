import CDTLS

/// TLS server contexts and connections over a byte stream (TURN over TLS), on the OpenSSL the project links,
/// through memory buffers: the caller moves the bytes, as with ``DTLSSession``.
public final class TLSServerContext: @unchecked Sendable {
    let context: OpaquePointer

    /// The certificate chain (leaf first) and private key, PEM files.
    public init(certificateChain: String, privateKey: String) throws(DTLSError) {
        var err = [CChar](repeating: 0, count: 256)
        guard let c = ls_tls_context_new(certificateChain, privateKey, &err, err.count) else {
            throw .certificate("\(certificateChain) and \(privateKey): " + String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        context = c
    }

    deinit { ls_tls_context_free(context) }

    public func connection() throws(DTLSError) -> TLSConnection {
        guard let t = ls_tls_new(context) else { throw .outOfMemory }
        return TLSConnection(t, context: self)
    }
}

/// One server-side TLS connection. Not thread-safe: one event loop owns it.
public final class TLSConnection {
    let tls: OpaquePointer
    /// Keeps the SSL_CTX alive for as long as the connection.
    let context: TLSServerContext
    var buffer = [UInt8](repeating: 0, count: 16 * 1024)

    init(_ tls: OpaquePointer, context: TLSServerContext) { (self.tls, self.context) = (tls, context) }

    deinit { ls_tls_free(tls) }

    public enum Read {
        case data([UInt8])
        /// The peer sent close_notify.
        case closed
    }

    /// Bytes from the peer in, the plaintext they complete out (empty during the handshake). Send
    /// ``takeOutput()`` afterwards: the handshake's answers.
    public func receive(_ bytes: some Collection<UInt8>) throws(DTLSError) -> Read {
        let fed = Array(bytes).withUnsafeBufferPointer { ls_tls_feed(tls, $0.baseAddress, $0.count) }
        guard fed == 1 else { throw .outOfMemory }
        var plaintext: [UInt8] = []
        while true {
            let n = buffer.withUnsafeMutableBufferPointer { ls_tls_read(tls, $0.baseAddress, $0.count) }
            if n > 0 {
                plaintext += buffer[..<Int(n)]
                continue
            }
            if n == LS_DTLS_CLOSED { return plaintext.isEmpty ? .closed : .data(plaintext) }
            if n == LS_DTLS_FAILED { throw .handshake(String(cString: ls_tls_error(tls))) }
            return .data(plaintext)
        }
    }

    public var isEstablished: Bool { ls_tls_established(tls) == 1 }

    /// Plaintext to the peer (after the handshake); then send ``takeOutput()``.
    public func write(_ bytes: some Collection<UInt8>) throws(DTLSError) {
        let n = Array(bytes).withUnsafeBufferPointer { ls_tls_write(tls, $0.baseAddress, $0.count) }
        guard n >= 0 else { throw .handshake(String(cString: ls_tls_error(tls))) }
    }

    /// What is to be sent to the peer: handshake records, ciphertext, alerts.
    public func takeOutput() -> [UInt8] {
        var out: [UInt8] = []
        while true {
            let n = buffer.withUnsafeMutableBufferPointer { ls_tls_take_output(tls, $0.baseAddress, $0.count) }
            guard n > 0 else { return out }
            out += buffer[..<Int(n)]
        }
    }

    public func shutdown() { ls_tls_shutdown(tls) }

    /// "TLSv1.3", once established.
    public var version: String { String(cString: ls_tls_version(tls)) }
}
