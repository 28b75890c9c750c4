@testable import STUN
import Testing
import TestSupport

/// Malformed messages are refused with a named error, never a trap; and a seeded mutation run over the RFC 5769
/// vectors only ever parses or throws.
@Suite struct MalformedMessageTests {
    static let request = RFC5769Tests.request

    static func patched(_ f: (inout [UInt8]) -> Void) -> [UInt8] {
        var b = request
        f(&b)
        return b
    }

    /// The request with MESSAGE-INTEGRITY twice (the second after the first, FINGERPRINT dropped).
    static let twoIntegrities: [UInt8] = {
        var b = Array(request[..<(request.count - 8)])
        b += Array(request[(request.count - 32)..<(request.count - 8)])
        Message.setLength(&b, b.count - 20)
        return b
    }()

    static let afterFingerprint: [UInt8] = {
        var b = request + [0x80, 0x22, 0x00, 0x00]
        Message.setLength(&b, b.count - 20)
        return b
    }()

    @Test(arguments: [
        ("empty", [], STUNError.truncatedHeader),
        ("truncated header", Array(request.prefix(19)), .truncatedHeader),
        ("wrong magic cookie", patched { $0[4] = 0x22 }, .wrongMagicCookie),
        ("RFC 3489 (no cookie)", patched { $0[4...7] = [0, 0, 0, 0] }, .wrongMagicCookie),
        ("top bits set (RTP/DTLS range)", patched { $0[0] = 0x80 }, .notSTUN),
        ("length past the end", patched { $0[3] = 0x5C }, .badLength(declared: 0x5C, available: 0x58)),
        ("length short of the end", patched { $0[3] = 0x54 }, .badLength(declared: 0x54, available: 0x58)),
        ("length not a multiple of 4", patched { $0[3] = 0x57 }, .badLength(declared: 0x57, available: 0x58)),
        ("attribute length past the end", patched { $0[22] = 0x01 }, .attributeOverrun(type: 0x8022)),
        ("duplicated MESSAGE-INTEGRITY", twoIntegrities, .duplicateMessageIntegrity),
        ("attribute after FINGERPRINT", afterFingerprint, .attributeAfterFingerprint),
        ("short MESSAGE-INTEGRITY", { () -> [UInt8] in
            var b: [UInt8] = [0, 1, 0, 8, 0x21, 0x12, 0xA4, 0x42] + [UInt8](repeating: 7, count: 12) + [0, 8, 0, 4, 1, 2, 3, 4]
            Message.setLength(&b, 8)
            return b
        }(), .malformedAttribute(type: 0x0008)),
        ("oversized message", { () -> [UInt8] in
            var b: [UInt8] = [0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42] + [UInt8](repeating: 7, count: 12)
            b += [0x80, 0x22, 0x20, 0x00] + [UInt8](repeating: 0x41, count: 0x2000)
            Message.setLength(&b, b.count - 20)
            return b
        }(), .messageTooLarge(8216)),
    ] as [(String, [UInt8], STUNError)])
    func refused(_ name: String, _ bytes: [UInt8], _ error: STUNError) {
        #expect(throws: error, "\(name)") { try Message(parsing: bytes) }
    }

    @Test func badAttributeValuesThrowWhenRead() throws {
        let m = Message(type: .bindingSuccess, transactionID: [UInt8](repeating: 1, count: 12))
            .adding(.xorMappedAddress, [0, 3, 0, 0, 1, 2, 3, 4])
            .adding(.errorCode, [0, 0, 9, 0])
        let parsed = try Message(parsing: m.encode())
        #expect(throws: STUNError.malformedAttribute(type: 0x0020)) { try parsed.xorMappedAddress() }
        #expect(throws: STUNError.malformedAttribute(type: 0x0009)) { try parsed.errorCode() }
    }

    @Test func unknownComprehensionRequiredAttributesAreListed() throws {
        let m = Message(type: .bindingRequest, transactionID: [UInt8](repeating: 2, count: 12))
            .adding(.init(rawValue: 0x7777), [1])
            .adding(.init(rawValue: 0xC001), [2])  // comprehension-optional: ignored
        let parsed = try Message(parsing: m.encode(fingerprint: true))
        #expect(parsed.unknownComprehensionRequired == [AttributeType(rawValue: 0x7777)])
        let answer = try Message(parsing: parsed.errorResponse(.unknownAttribute, unknown: parsed.unknownComprehensionRequired).encode())
        #expect(try answer.errorCode() == .unknownAttribute)
        #expect(answer.attribute(.unknownAttributes) == [0x77, 0x77])
    }

    @Test func mutationsParseOrThrow() {
        var rng = SplitMix64(state: 5769)
        var parsed = 0
        for vector in [RFC5769Tests.request, RFC5769Tests.ipv4Response, RFC5769Tests.ipv6Response, RFC5769Tests.longTermRequest] {
            for _ in 0..<2000 {
                let bytes = rng.mutate(vector)
                if let m = try? Message(parsing: bytes) {
                    parsed += 1
                    _ = try? m.xorMappedAddress()
                    _ = try? m.errorCode()
                    _ = m.fingerprintIsValid
                    _ = m.isAuthentic(key: RFC5769Tests.password)
                }
            }
        }
        #expect(parsed > 0)
    }

    @Test func crc32CheckValue() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
    }
}
