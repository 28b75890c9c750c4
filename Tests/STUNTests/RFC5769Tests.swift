import STUN
import Testing
import TestSupport

/// The test vectors of RFC 5769 ("Test Vectors for STUN", section 2), byte for byte as the RFC prints them. The
/// first three use the short-term password below; SOFTWARE and USERNAME are padded with spaces there (padding
/// may hold any value).
@Suite struct RFC5769Tests {
    static let password = Array("VOkJxbRl1RmTxUk/WvJxBt".utf8)

    /// 2.1 Sample Request: SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME, MESSAGE-INTEGRITY, FINGERPRINT.
    static let request = [UInt8](hex: """
        00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
        80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
        00 24 00 04 6e 00 01 ff
        80 29 00 08 93 2f f9 b1 51 26 3b 36
        00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
        00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
        80 28 00 04 e5 7a 3b cf
        """)

    /// 2.2 Sample IPv4 Response: XOR-MAPPED-ADDRESS 192.0.2.1:32853.
    static let ipv4Response = [UInt8](hex: """
        01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
        80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
        00 20 00 08 00 01 a1 47 e1 12 a6 43
        00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
        80 28 00 04 c0 7d 4c 96
        """)

    /// 2.3 Sample IPv6 Response: XOR-MAPPED-ADDRESS [2001:db8:1234:5678:11:2233:4455:6677]:32853.
    static let ipv6Response = [UInt8](hex: """
        01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
        80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
        00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
        00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
        80 28 00 04 c8 fb 0b 4c
        """)

    /// 2.4 Sample Request with Long-Term Authentication: USERNAME (in Katakana), NONCE, REALM, MESSAGE-INTEGRITY.
    static let longTermRequest = [UInt8](hex: """
        00 01 00 60 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e
        00 06 00 12 e3 83 9e e3 83 88 e3 83 aa e3 83 83 e3 82 af e3 82 b9 00 00
        00 15 00 1c 66 2f 2f 34 39 39 6b 39 35 34 64 36 4f 4c 33 34 6f 4c 39 46 53 54 76 79 36 34 73 41
        00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00
        00 08 00 14 f6 70 24 65 6d d6 4a 3e 02 b8 e0 71 2e 85 c9 a2 8c a8 96 66
        """)

    @Test func sampleRequest() throws {
        let m = try Message(parsing: Self.request)
        #expect(m.type == .bindingRequest)
        #expect(m.transactionID == [UInt8](hex: "b7 e7 a7 01 bc 34 d6 86 fa 87 df ae"))
        #expect(m.software == "STUN test client")
        #expect(m.username == "evtj:h6vY")
        #expect(m.priority == 0x6E00_01FF)
        #expect(m.iceControlled == 0x932F_F9B1_5126_3B36)
        #expect(m.fingerprintIsValid == true)
        #expect(m.messageIntegrityIsValid(key: Self.password) == true)
        #expect(m.messageIntegrityIsValid(key: Array("VOkJxbRl1RmTxUk/WvJxBT".utf8)) == false)
        #expect(m.isAuthentic(key: Self.password))
        #expect(m.unknownComprehensionRequired.isEmpty)
    }

    @Test(arguments: [(ipv4Response, "192.0.2.1:32853"), (ipv6Response, "[2001:db8:1234:5678:11:2233:4455:6677]:32853")])
    func sampleResponses(bytes: [UInt8], mapped: String) throws {
        let m = try Message(parsing: bytes)
        #expect(m.type == .bindingSuccess)
        #expect(m.software == "test vector")
        #expect(try m.xorMappedAddress()?.description == mapped)
        #expect(m.fingerprintIsValid == true)
        #expect(m.messageIntegrityIsValid(key: Self.password) == true)
        // Written again from its parts: the RFC's bytes up to MESSAGE-INTEGRITY, but for the padding of SOFTWARE
        // (the RFC's is a space, ours zero, and the MAC covers it), and valid integrity and fingerprint of its own.
        let written = Message(type: .bindingSuccess, transactionID: m.transactionID)
            .adding(.software, Array("test vector".utf8))
            .adding(.xorMappedAddress, address: try #require(try m.xorMappedAddress()))
            .encode(integrityKey: Self.password, fingerprint: true)
        #expect(written.count == bytes.count)
        var prefix = Array(written[..<(bytes.count - 32)])
        prefix[20 + 4 + 11] = 0x20
        #expect(prefix == Array(bytes[..<(bytes.count - 32)]))
        let reparsed = try Message(parsing: written)
        #expect(reparsed.messageIntegrityIsValid(key: Self.password) == true && reparsed.fingerprintIsValid == true)
    }

    @Test func longTermRequest() throws {
        let m = try Message(parsing: Self.longTermRequest)
        #expect(m.username == "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}")
        #expect(m.realm == "example.org" && m.nonce == "f//499k954d6OL34oL9FSTvy64sA")
        #expect(m.fingerprintIsValid == nil)
        let key = Message.longTermKey(username: m.username!, realm: "example.org", password: "TheMatrIX")
        #expect(m.messageIntegrityIsValid(key: key) == true)
        #expect(m.messageIntegrityIsValid(key: Message.longTermKey(username: m.username!, realm: "example.org", password: "TheMatrix")) == false)
    }

    /// A changed byte anywhere before FINGERPRINT breaks it; a changed byte before MESSAGE-INTEGRITY breaks that.
    @Test func changedBytesAreCaught() throws {
        for i in 20..<(Self.request.count - 8) {
            var bytes = Self.request
            bytes[i] ^= 0x01
            guard let m = try? Message(parsing: bytes) else { continue }
            #expect(m.fingerprintIsValid == false, "byte \(i)")
            if i < Self.request.count - 32 { #expect(m.messageIntegrityIsValid(key: Self.password) == false, "byte \(i)") }
        }
    }

    /// The type interleaving against the values RFC 8489 and RFC 8656 give, both ways.
    @Test(arguments: [
        (Method.binding, MessageClass.request, UInt16(0x0001)), (.binding, .successResponse, 0x0101),
        (.binding, .errorResponse, 0x0111), (.binding, .indication, 0x0011), (.allocate, .request, 0x0003),
        (.allocate, .errorResponse, 0x0113), (.refresh, .request, 0x0004), (.send, .indication, 0x0016),
        (.data, .indication, 0x0017), (.createPermission, .request, 0x0008), (.channelBind, .successResponse, 0x0109),
    ])
    func messageTypes(method: Method, messageClass: MessageClass, raw: UInt16) {
        #expect(MessageType(method: method, messageClass: messageClass).rawValue == raw)
        #expect(MessageType(rawValue: raw) == MessageType(method: method, messageClass: messageClass))
    }
}
