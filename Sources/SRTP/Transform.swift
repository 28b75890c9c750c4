import DTLS

/// The cipher and authentication of SRTP or of SRTCP in one direction, under session keys: builds each packet's IV
/// and places its tag. The packet bookkeeping (indices, replay windows) is the ``SRTPContext``'s.
struct Transform {
    enum Cipher {
        /// AES-CM (RFC 3711 4.1.1) and HMAC-SHA1 truncated to 80 bits (4.2.1).
        case counter(CounterCipher, HMACSHA1)
        /// AEAD AES-128-GCM (RFC 7714).
        case gcm(GCMCipher)
    }

    let cipher: Cipher
    /// 14 bytes for AES-CM, 12 for AES-GCM.
    let salt: [UInt8]
    let tagLength: Int
    var isGCM: Bool { if case .gcm = cipher { true } else { false } }

    init(profile: SRTPProfile, keys: SessionKeys) throws(SRTPError) {
        switch profile {
        case .aes128CmHmacSha1_80:
            cipher = .counter(try CounterCipher(key: keys.encryption), try HMACSHA1(key: keys.authentication))
            tagLength = 10
        case .aeadAes128Gcm:
            cipher = .gcm(try GCMCipher(key: keys.encryption))
            tagLength = 16
        }
        salt = keys.salt
    }

    // MARK: - SRTP

    /// Encrypts the payload (`length - header` bytes at `payload`, which may be `p + header`) into
    /// `p[header..<length]` and writes the tag at `p[length...]`; `p[0..<header]` holds the header.
    func sealRTP(_ p: UnsafeMutablePointer<UInt8>, header: Int, length: Int, payload: UnsafePointer<UInt8>, ssrc: UInt32,
                 index: UInt64) -> Bool {
        var iv = initializationVector(ssrc: ssrc, index: index)
        switch cipher {
        case .counter(let ctr, let hmac):
            guard iv.with({ ctr.apply(iv: $0, payload, count: length - header, into: p + header) }) else { return false }
            return tagRTP(hmac, p, length: length, roc: UInt32(truncatingIfNeeded: index >> 16), into: p + length)
        case .gcm(let gcm):
            return iv.with {
                gcm.seal(iv: $0, aad: p, count: header, aad2: nil, count: 0, payload, count: length - header,
                         into: p + header, tag: p + length)
            }
        }
    }

    /// Checks the tag at the end of `p[0..<length]` and decrypts the payload in place.
    func openRTP(_ p: UnsafeMutablePointer<UInt8>, header: Int, length: Int, ssrc: UInt32, index: UInt64) -> Bool {
        let body = length - tagLength
        var iv = initializationVector(ssrc: ssrc, index: index)
        switch cipher {
        case .counter(let ctr, let hmac):
            var tag = Bytes20()
            guard tag.with({ tagRTP(hmac, p, length: body, roc: UInt32(truncatingIfNeeded: index >> 16), into: $0) }),
                  tag.matches(p + body, count: tagLength) else { return false }
            return iv.with { ctr.apply(iv: $0, p + header, count: body - header, into: p + header) }
        case .gcm(let gcm):
            return iv.with {
                gcm.open(iv: $0, aad: p, count: header, aad2: nil, count: 0, p + header, count: body - header,
                         tag: p + body, into: p + header)
            }
        }
    }

    /// HMAC-SHA1 of the packet and the rollover counter (RFC 3711 4.2: the authenticated portion, then ROC).
    private func tagRTP(_ hmac: HMACSHA1, _ p: UnsafePointer<UInt8>, length: Int, roc: UInt32,
                        into out: UnsafeMutablePointer<UInt8>) -> Bool {
        var full = Bytes20()
        let rocBytes = roc.bigEndian
        let ok = withUnsafeBytes(of: rocBytes) { r in
            full.with { hmac.authenticate(p, count: length, r.baseAddress!.assumingMemoryBound(to: UInt8.self), count: 4, into: $0) }
        }
        guard ok else { return false }
        full.copy(tagLength, into: out)
        return true
    }

    // MARK: - SRTCP

    /// Encrypts `p[8..<length]` in place and writes the E bit and index and the tag after it: AES-CM puts the
    /// index first (it is authenticated as part of the packet, RFC 3711 3.4), AES-GCM last (RFC 7714 9.1).
    func sealRTCP(_ p: UnsafeMutablePointer<UInt8>, length: Int, ssrc: UInt32, index: UInt32) -> Bool {
        let word = 0x8000_0000 | index
        var iv = initializationVector(ssrc: ssrc, index: UInt64(index))
        switch cipher {
        case .counter(let ctr, let hmac):
            guard iv.with({ ctr.apply(iv: $0, p + 8, count: length - 8, into: p + 8) }) else { return false }
            Self.write(word, to: p + length)
            var full = Bytes20()
            guard full.with({ hmac.authenticate(p, count: length + 4, nil, count: 0, into: $0) }) else { return false }
            full.copy(tagLength, into: p + length + 4)
            return true
        case .gcm(let gcm):
            Self.write(word, to: p + length + tagLength)
            return iv.with {
                gcm.seal(iv: $0, aad: p, count: 8, aad2: p + length + tagLength, count: 4, p + 8, count: length - 8,
                         into: p + 8, tag: p + length)
            }
        }
    }

    /// Checks and decrypts the SRTCP packet in `p[0..<length]` in place; with AES-GCM and the E bit 0
    /// (`encrypted` false) it is only authenticated. (AES-CM SRTCP sent in clear never gets here: the context
    /// refuses it, as libsrtp does.)
    func openRTCP(_ p: UnsafeMutablePointer<UInt8>, length: Int, ssrc: UInt32, word: UInt32, encrypted: Bool) -> Bool {
        let body = length - tagLength - 4
        var iv = initializationVector(ssrc: ssrc, index: UInt64(word & 0x7FFF_FFFF))
        switch cipher {
        case .counter(let ctr, let hmac):
            var tag = Bytes20()
            guard tag.with({ hmac.authenticate(p, count: body + 4, nil, count: 0, into: $0) }),
                  tag.matches(p + body + 4, count: tagLength) else { return false }
            return iv.with { ctr.apply(iv: $0, p + 8, count: body - 8, into: p + 8) }
        case .gcm(let gcm):
            // Unencrypted (E = 0): the whole packet is associated data and the tag authenticates it (RFC 7714 9.2).
            let aadLength = encrypted ? 8 : body
            return iv.with {
                gcm.open(iv: $0, aad: p, count: aadLength, aad2: p + length - 4, count: 4, p + aadLength,
                         count: body - aadLength, tag: p + body, into: p + aadLength)
            }
        }
    }

    // MARK: - IVs

    /// The IV: the salt XOR the SSRC and the 48-bit index, both aligned to the salt's end. For AES-CM (RFC 3711
    /// 4.1.1) that is (salt * 2^16) XOR (SSRC * 2^64) XOR (index * 2^16) in 16 bytes, the last two zero; for AES-GCM
    /// (RFC 7714 8.1, 9.1) 2 zero bytes, the SSRC, then the ROC and sequence number, XOR the 12-byte salt. For SRTCP
    /// the index is the 31-bit SRTCP index (its 48 bits' first two bytes zero).
    private func initializationVector(ssrc: UInt32, index: UInt64) -> IV {
        var iv = IV()
        withUnsafeMutableBytes(of: &iv.storage) { b in
            let end = salt.count
            for i in 0..<end { b[i] = salt[i] }
            for i in 0..<4 { b[end - 10 + i] ^= UInt8(truncatingIfNeeded: ssrc >> (24 - 8 * UInt32(i))) }
            for i in 0..<6 { b[end - 6 + i] ^= UInt8(truncatingIfNeeded: index >> (40 - 8 * UInt64(i))) }
        }
        return iv
    }

    static func write(_ v: UInt32, to p: UnsafeMutablePointer<UInt8>) {
        p[0] = UInt8(truncatingIfNeeded: v >> 24); p[1] = UInt8(truncatingIfNeeded: v >> 16)
        p[2] = UInt8(truncatingIfNeeded: v >> 8); p[3] = UInt8(truncatingIfNeeded: v)
    }
}

/// A 16-byte IV on the stack.
struct IV {
    var storage: (UInt64, UInt64) = (0, 0)

    mutating func with<R>(_ body: (UnsafeMutablePointer<UInt8>) -> R) -> R {
        withUnsafeMutableBytes(of: &storage) { body($0.baseAddress!.assumingMemoryBound(to: UInt8.self)) }
    }
}

/// An HMAC-SHA1 on the stack.
struct Bytes20 {
    var storage: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                  UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    mutating func with<R>(_ body: (UnsafeMutablePointer<UInt8>) -> R) -> R {
        withUnsafeMutableBytes(of: &storage) { body($0.baseAddress!.assumingMemoryBound(to: UInt8.self)) }
    }

    func copy(_ count: Int, into out: UnsafeMutablePointer<UInt8>) {
        withUnsafeBytes(of: storage) { b in for i in 0..<count { out[i] = b[i] } }
    }

    /// Whether the first `count` bytes equal `other`'s, in time that does not depend on where they differ.
    func matches(_ other: UnsafePointer<UInt8>, count: Int) -> Bool {
        withUnsafeBytes(of: storage) { b in
            var difference: UInt8 = 0
            for i in 0..<count { difference |= b[i] ^ other[i] }
            return difference == 0
        }
    }
}
