import DTLS
@testable import SRTP
import Testing
import TestSupport

/// The RFCs' test vectors and libsrtp's own (`test/srtp_driver.c`: `srtp_validate`, `srtp_validate_gcm`), which
/// pion's tests repeat byte for byte.
@Suite struct SRTPVectorTests {
    /// RFC 3711 B.2: the AES-CM keystream (the first three blocks).
    @Test func aesCounterModeKeystream() throws {
        let ctr = try CounterCipher(key: [UInt8](hex: "2b7e151628aed2a6abf7158809cf4f3c"))
        let iv = [UInt8](hex: "f0f1f2f3f4f5f6f7f8f9fafbfcfd0000")
        var out = [UInt8](repeating: 0, count: 48)
        let ok = out.withUnsafeMutableBufferPointer { o in ctr.apply(iv: iv, o.baseAddress, count: 48, into: o.baseAddress) }
        #expect(ok)
        #expect(out == [UInt8](hex: """
            e03ead0935c95e80e166b16dd92b4eb4 d23513162b02d0f72a43a2fe4a5f97ab 41e95b3bb0a2e8dd477901e4fca894c0
            """))
    }

    /// RFC 3711 B.3: the session keys of the master key and salt (the auth key's first 160 bits, which is what
    /// HMAC-SHA1-80 uses).
    @Test func keyDerivation() throws {
        let master = [UInt8](hex: "e1f97a0d3e018be0d64fa32c06de4139 0ec675ad498afeebb6960b3aabe6")
        let keys = try SessionKeys(profile: .aes128CmHmacSha1_80, masterKey: master, rtcp: false)
        #expect(keys.encryption == [UInt8](hex: "c61e7a93744f39ee10734afe3ff7a087"))
        #expect(keys.salt == [UInt8](hex: "30cbbc08863d8c85d49db34a9ae1"))
        #expect(keys.authentication == [UInt8](hex: "cebe321f6ff7716b6fd4ab49af256a156d38baa4"))
    }

    static let rtpPlain = [UInt8](hex: "800f1234decafbadcafebabeabababababababababababababababab")
    static let rtcpPlain = [UInt8](hex: "81c8000bcafebabeabababababababababababababababab")

    /// libsrtp's `srtp_validate`: AES-CM with HMAC-SHA1-80 under RFC 3711 B.3's master key; the first SRTCP packet
    /// has index 1.
    @Test func libsrtpValidateAESCM() throws {
        let master = [UInt8](hex: "e1f97a0d3e018be0d64fa32c06de4139 0ec675ad498afeebb6960b3aabe6")
        let out = try SRTPContext(profile: .aes128CmHmacSha1_80, masterKey: master, direction: .outbound)
        var rtp = Self.rtpPlain
        try out.protectRTP(&rtp)
        #expect(rtp == [UInt8](hex: "800f1234decafbadcafebabe 4e55dc4ce79978d88ca4d215949d2402 b78d6acc99ea179b8dbb"))
        var rtcp = Self.rtcpPlain
        try out.protectRTCP(&rtcp)
        #expect(rtcp == [UInt8](hex: "81c8000bcafebabe 7128035be487b9bdbef89041f977a5a8 80000001 993e08cd54d6c1230798"))
        let into = try SRTPContext(profile: .aes128CmHmacSha1_80, masterKey: master, direction: .inbound)
        try into.unprotectRTP(&rtp)
        try into.unprotectRTCP(&rtcp)
        #expect(rtp == Self.rtpPlain && rtcp == Self.rtcpPlain)
    }

    /// libsrtp's `srtp_validate_gcm`: AEAD AES-128-GCM, 16-byte tags; SRTCP's E bit and index after the tag.
    @Test func libsrtpValidateGCM() throws {
        let master = [UInt8](hex: "000102030405060708090a0b0c0d0e0f a0a1a2a3a4a5a6a7a8a9aaab")
        let out = try SRTPContext(profile: .aeadAes128Gcm, masterKey: master, direction: .outbound)
        var rtp = Self.rtpPlain
        try out.protectRTP(&rtp)
        #expect(rtp == [UInt8](hex: """
            800f1234decafbadcafebabe c5002ede04cfdd2eb91159e0880aa06e d2976826f796b201df3131a127e8a392
            """))
        var rtcp = Self.rtcpPlain
        try out.protectRTCP(&rtcp)
        #expect(rtcp == [UInt8](hex: """
            81c8000bcafebabe c98b8b5df0392a55852b6c21ac8e7025 c52c6fbea2b3b446ea31123ba88ce61e 80000001
            """))
        let into = try SRTPContext(profile: .aeadAes128Gcm, masterKey: master, direction: .inbound)
        try into.unprotectRTP(&rtp)
        try into.unprotectRTCP(&rtcp)
        #expect(rtp == Self.rtpPlain && rtcp == Self.rtcpPlain)
    }

    /// RFC 7714's vectors give session keys ("Quid pro quo" as the salt), so they drive the transform directly.
    static func rfc7714() throws -> Transform {
        try Transform(profile: .aeadAes128Gcm, keys: SessionKeys(
            encryption: [UInt8](hex: "000102030405060708090a0b0c0d0e0f"), authentication: [],
            salt: [UInt8](hex: "517569642070726f2071756f")))
    }

    /// RFC 7714 16.1.1 (and 16.1.2, its reverse).
    @Test func rfc7714SRTPEncryption() throws {
        let t = try Self.rfc7714()
        let plain = [UInt8](hex: """
            8040f17b8041f8d35501a0b2 47616c6c696120657374206f6d6e69732064697669736120696e207061727465732074726573
            """)
        let sealed = [UInt8](hex: """
            8040f17b8041f8d35501a0b2 f24de3a3fb34de6cacba861c9d7e4bcabe633bd50d294e6f42a5f47a51c7d19b36de3adf8833
            899d7f27beb16a9152cf765ee4390cce
            """)
        var p = plain + [UInt8](repeating: 0, count: 16)
        let ok = p.withUnsafeMutableBufferPointer {
            t.sealRTP($0.baseAddress!, header: 12, length: plain.count, payload: $0.baseAddress! + 12, ssrc: 0x5501_a0b2,
                      index: 0xf17b)
        }
        #expect(ok && p == sealed)
        var q = sealed
        let opened = q.withUnsafeMutableBufferPointer {
            t.openRTP($0.baseAddress!, header: 12, length: sealed.count, ssrc: 0x5501_a0b2, index: 0xf17b)
        }
        #expect(opened && Array(q[..<plain.count]) == plain)
        // A wrong tag: refused, and the payload decrypted before the verdict is wiped.
        var forged = sealed
        forged[forged.count - 1] ^= 1
        let refused = forged.withUnsafeMutableBufferPointer {
            t.openRTP($0.baseAddress!, header: 12, length: sealed.count, ssrc: 0x5501_a0b2, index: 0xf17b)
        }
        #expect(!refused && forged[12..<plain.count].allSatisfy { $0 == 0 })
    }

    static let rfc7714RTCP = [UInt8](hex: """
        81c8000d4d6172734e5450314e545032525450200000042a0000e9304c756e61deadbeefdeadbeefdeadbeefdeadbeefdeadbeef
        """)

    /// RFC 7714 17.1 (SRTCP index 0x5d4, E = 1) and 17.3 (E = 0: the whole packet authenticated, nothing encrypted).
    @Test func rfc7714SRTCP() throws {
        let t = try Self.rfc7714()
        let plain = Self.rfc7714RTCP
        var p = plain + [UInt8](repeating: 0, count: 20)
        let ok = p.withUnsafeMutableBufferPointer {
            t.sealRTCP($0.baseAddress!, length: plain.count, ssrc: 0x4d61_7273, index: 0x5d4)
        }
        #expect(ok && p == [UInt8](hex: """
            81c8000d4d617273 63e94885dcdab67ca727d7662f6b7e997ff5c0f76c06f32dc676a5f1730d6fda4ce09b4686303ded0bb9275b
            c84aa45896cf4d2fc5abf87245d9eade 800005d4
            """))
        var tagged = plain + [UInt8](hex: "841dd9683dd78ec92ae58790125f62b3 000005d4")
        let opened = tagged.withUnsafeMutableBufferPointer {
            t.openRTCP($0.baseAddress!, length: $0.count, ssrc: 0x4d61_7273, word: 0x5d4, encrypted: false)
        }
        #expect(opened && Array(tagged[..<plain.count]) == plain)
        tagged[20] ^= 1
        let forged = tagged.withUnsafeMutableBufferPointer {
            t.openRTCP($0.baseAddress!, length: $0.count, ssrc: 0x4d61_7273, word: 0x5d4, encrypted: false)
        }
        #expect(!forged)
    }
}
