import CSRTPCipher

// OpenSSL's AES-CTR, HMAC-SHA1 and AES-GCM (CSRTPCipher), each keyed once and freed with its owner. Not thread-safe:
// the SRTP context that owns them is owned by one event loop.

/// AES-128 in counter mode (RFC 3711 4.1.1).
final class CounterCipher {
    let cipher: OpaquePointer

    init(key: [UInt8]) throws(SRTPError) {
        guard key.count == 16, let c = key.withUnsafeBufferPointer({ ls_srtp_ctr_new($0.baseAddress) }) else {
            throw .cipherFailed
        }
        cipher = c
    }

    deinit { ls_srtp_ctr_free(cipher) }

    /// `out` = `input` XOR the keystream from the counter block `iv` (16 bytes); in place when the pointers are equal.
    func apply(iv: UnsafePointer<UInt8>, _ input: UnsafePointer<UInt8>?, count: Int, into out: UnsafeMutablePointer<UInt8>?) -> Bool {
        count == 0 || ls_srtp_ctr_xor(cipher, iv, input, count, out) == 1
    }
}

/// HMAC-SHA1 (RFC 2104), as SRTP's authentication (RFC 3711 4.2.1).
final class HMACSHA1 {
    let mac: OpaquePointer

    init(key: [UInt8]) throws(SRTPError) {
        guard let m = key.withUnsafeBufferPointer({ ls_srtp_hmac_new($0.baseAddress, $0.count) }) else {
            throw .cipherFailed
        }
        mac = m
    }

    deinit { ls_srtp_hmac_free(mac) }

    /// The 20-byte HMAC of `a` followed by `b`, into `out`.
    func authenticate(_ a: UnsafePointer<UInt8>, count aCount: Int, _ b: UnsafePointer<UInt8>?, count bCount: Int,
                      into out: UnsafeMutablePointer<UInt8>) -> Bool {
        ls_srtp_hmac_sha1(mac, a, aCount, b, bCount, out) == 1
    }
}

/// AES-128-GCM with 12-byte IVs and 16-byte tags (RFC 7714).
final class GCMCipher {
    let cipher: OpaquePointer

    init(key: [UInt8]) throws(SRTPError) {
        guard key.count == 16, let c = key.withUnsafeBufferPointer({ ls_srtp_gcm_new($0.baseAddress) }) else {
            throw .cipherFailed
        }
        cipher = c
    }

    deinit { ls_srtp_gcm_free(cipher) }

    func seal(iv: UnsafePointer<UInt8>, aad: UnsafePointer<UInt8>?, count aadCount: Int, aad2: UnsafePointer<UInt8>?,
              count aad2Count: Int, _ input: UnsafePointer<UInt8>?, count: Int, into out: UnsafeMutablePointer<UInt8>?,
              tag: UnsafeMutablePointer<UInt8>) -> Bool {
        ls_srtp_gcm_seal(cipher, iv, aad, aadCount, aad2, aad2Count, input, count, out, tag) == 1
    }

    /// False when the tag does not check (or OpenSSL failed): then `out` holds zeros.
    func open(iv: UnsafePointer<UInt8>, aad: UnsafePointer<UInt8>?, count aadCount: Int, aad2: UnsafePointer<UInt8>?,
              count aad2Count: Int, _ input: UnsafePointer<UInt8>?, count: Int, tag: UnsafePointer<UInt8>,
              into out: UnsafeMutablePointer<UInt8>?) -> Bool {
        ls_srtp_gcm_open(cipher, iv, aad, aadCount, aad2, aad2Count, input, count, tag, out) == 1
    }
}
