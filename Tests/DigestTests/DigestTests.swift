import Digest
import Testing
import TestSupport

/// The published examples: RFC 1321 (MD5), FIPS 180-2 appendices (SHA-1, SHA-256), RFC 2202 (HMAC-SHA-1) and
/// RFC 4231 (HMAC-SHA-256), plus the empty cases Swift hands over without an address.
struct DigestTests {
    static let fipsTwoBlocks = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
    static let millionA = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
    static let largerThanBlock = Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)

    @Test func md5() {
        #expect(Digest.md5([]) == [UInt8](hex: "d41d8cd98f00b204e9800998ecf8427e"))
        #expect(Digest.md5(Array("abc".utf8)) == [UInt8](hex: "900150983cd24fb0d6963f7d28e17f72"))
        #expect(Digest.md5(Array("message digest".utf8)) == [UInt8](hex: "f96b697d7cb7938d525a2f31aaf161d0"))
    }

    @Test func sha1() {
        #expect(Digest.sha1([]) == [UInt8](hex: "da39a3ee5e6b4b0d3255bfef95601890afd80709"))
        #expect(Digest.sha1(Array("abc".utf8)) == [UInt8](hex: "a9993e364706816aba3e25717850c26c9cd0d89d"))
        #expect(Digest.sha1(Self.fipsTwoBlocks) == [UInt8](hex: "84983e441c3bd26ebaae4aa1f95129e5e54670f1"))
    }

    @Test func sha256AndTheTestsOwnReference() {
        let cases: [([UInt8], String)] = [
            ([], "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            (Array("abc".utf8), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            (Self.fipsTwoBlocks, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
            (Self.millionA, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
        ]
        for (message, expected) in cases {
            #expect(Digest.sha256(message) == [UInt8](hex: expected))
            #expect(message.withUnsafeBytes { Digest.sha256($0) } == [UInt8](hex: expected))
            #expect(ReferenceSHA256.hash(message) == [UInt8](hex: expected))
        }
        // Lengths around the padding boundary, where a hand-written SHA-256 goes wrong first.
        for n in 50...130 {
            let message = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
            #expect(ReferenceSHA256.hash(message) == Digest.sha256(message), "length \(n)")
        }
    }

    @Test func hmacSHA1() {
        #expect(Digest.hmacSHA1(key: [UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8))
                == [UInt8](hex: "b617318655057264e28bc0b6fb378c8ef146be00"))
        #expect(Digest.hmacSHA1(key: Array("Jefe".utf8), Array("what do ya want for nothing?".utf8))
                == [UInt8](hex: "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"))
        #expect(Digest.hmacSHA1(key: [UInt8](repeating: 0xaa, count: 80), Self.largerThanBlock)
                == [UInt8](hex: "aa4ae5e15272d00e95705637ce8a3b55ed402112"))
    }

    @Test func hmacSHA256() {
        #expect(Digest.hmacSHA256(key: [UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8))
                == [UInt8](hex: "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"))
        #expect(Digest.hmacSHA256(key: Array("Jefe".utf8), Array("what do ya want for nothing?".utf8))
                == [UInt8](hex: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"))
        #expect(Digest.hmacSHA256(key: [UInt8](repeating: 0xaa, count: 131), Self.largerThanBlock)
                == [UInt8](hex: "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"))
        #expect(Digest.hmacSHA256(key: [], [])
                == [UInt8](hex: "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad"))
    }
}
