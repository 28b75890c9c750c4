import ICE
import NIOCore
import STUN
import Testing
import TestSupport

/// What the STUN server answers, without sockets.
@Suite struct BindingResponderTests {
    let responder = BindingResponder()
    static let client = Address(ip: [192, 0, 2, 1], port: 32853)
    static let tid = [UInt8](hex: "b7 e7 a7 01 bc 34 d6 86 fa 87 df ae")

    func reply(_ bytes: [UInt8], from: Address = client) throws -> Message {
        guard case .reply(let out) = responder.respond(to: bytes, from: from) else {
            throw TestFailure("no reply")
        }
        return try Message(parsing: out)
    }

    @Test func bindingGetsTheSourceAddress() throws {
        let request = Message(type: .bindingRequest, transactionID: Self.tid).encode()
        let response = try reply(request)
        #expect(response.type == .bindingSuccess && response.transactionID == Self.tid)
        #expect(try response.xorMappedAddress() == Self.client)
        #expect(!response.hasFingerprint, "no FINGERPRINT unless the request had one")
        let v6 = Address(ip: [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1], port: 443)
        #expect(try reply(request, from: v6).xorMappedAddress() == v6)
    }

    /// RFC 5769's sample request (ICE attributes, integrity, fingerprint) is answered, with a FINGERPRINT.
    @Test func answersTheRFC5769Request() throws {
        let response = try reply([UInt8](hex: """
            00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
            80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
            00 24 00 04 6e 00 01 ff 80 29 00 08 93 2f f9 b1 51 26 3b 36
            00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
            00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
            80 28 00 04 e5 7a 3b cf
            """))
        #expect(response.type == .bindingSuccess && response.fingerprintIsValid == true)
        #expect(response.software == "LiveSwarm")
    }

    @Test func badFingerprintIsDroppedSilently() {
        var bytes = Message(type: .bindingRequest, transactionID: Self.tid).encode(fingerprint: true)
        bytes[bytes.count - 1] ^= 0xFF
        #expect(responder.respond(to: bytes, from: Self.client) == .drop("bad FINGERPRINT"))
    }

    @Test func unknownComprehensionRequiredAttributesGet420() throws {
        let request = Message(type: .bindingRequest, transactionID: Self.tid).adding(.init(rawValue: 0x0777), [1, 2]).encode()
        let response = try reply(request)
        #expect(response.type == .bindingError)
        #expect(try response.errorCode()?.code == 420)
        #expect(response.attribute(.unknownAttributes) == [0x07, 0x77])
    }

    @Test func otherMethodsGet400AndNonRequestsNothing() throws {
        let allocate = Message(type: MessageType(method: .allocate, messageClass: .request), transactionID: Self.tid).encode()
        #expect(try reply(allocate).errorCode()?.code == 400)
        for c in [MessageClass.indication, .successResponse, .errorResponse] {
            let m = Message(type: MessageType(method: .binding, messageClass: c), transactionID: Self.tid).encode()
            guard case .drop = responder.respond(to: m, from: Self.client) else {
                Issue.record("answered a \(c)")
                continue
            }
        }
        guard case .drop = responder.respond(to: [0x16, 0xFE, 0xFD] + [UInt8](repeating: 0, count: 40), from: Self.client) else {
            Issue.record("answered DTLS")
            return
        }
    }
}

/// The fast path (no Message built) must answer exactly what the general path answers, and hand everything
/// else to it.
@Suite struct BindingFastPathTests {
    let responder = BindingResponder()

    static func slow(_ r: BindingResponder, _ bytes: [UInt8], _ source: SocketAddress) -> [UInt8]? {
        let address: Address
        switch source {
        case .v4(let a):
            let ip = UInt32(bigEndian: a.address.sin_addr.s_addr)
            address = Address(ip: [UInt8(ip >> 24), UInt8(ip >> 16 & 0xFF), UInt8(ip >> 8 & 0xFF), UInt8(ip & 0xFF)], port: UInt16(source.port!))
        case .v6(let a):
            address = Address(ip: withUnsafeBytes(of: a.address.sin6_addr) { Array($0) }, port: UInt16(source.port!))
        default:
            return nil
        }
        guard case .reply(let out) = r.respond(to: bytes, from: address) else { return nil }
        return out
    }

    @Test func sameBytesAsTheGeneralPath() throws {
        let sources = [try SocketAddress(ipAddress: "192.0.2.1", port: 32853), try SocketAddress(ipAddress: "2001:db8::7", port: 443)]
        var rng = SplitMix64(state: 8489)
        var fast = 0
        for n in 0..<400 {
            let tid = (0..<12).map { _ in UInt8.random(in: 0...255, using: &rng) }
            var m = Message(type: .bindingRequest, transactionID: tid)
            if n % 3 == 0 { m = m.adding(.priority, [0x6e, 0, 1, 0xff]).adding(.iceControlling, [UInt8](repeating: 9, count: 8)) }
            if n % 5 == 0 { m = m.adding(.username, Array("abc:def".utf8)) }
            if n % 7 == 0 { m = m.adding(.init(rawValue: 0xC0DE), [1, 2, 3]) }
            var bytes = m.encode(integrityKey: n % 2 == 0 ? [1, 2, 3] : nil, fingerprint: n % 4 != 1)
            if n % 11 == 0 { bytes = rng.mutate(bytes, count: 2) }
            for source in sources {
                let expected = Self.slow(responder, bytes, source)
                if let answer = responder.fastBindingResponse(to: ByteBuffer(bytes: bytes), from: source, allocator: .init()) {
                    fast += 1
                    #expect(Array(answer.readableBytesView) == expected, "request \(n) from \(source)")
                }
            }
        }
        #expect(fast > 600, "the fast path took \(fast) of 800")
    }

    /// What the fast path must leave to the general path: a 420, a bad FINGERPRINT, other methods, not STUN.
    @Test func leavesTheRestToTheGeneralPath() throws {
        let source = try SocketAddress(ipAddress: "192.0.2.1", port: 1)
        let tid = [UInt8](repeating: 3, count: 12)
        var badFingerprint = Message(type: .bindingRequest, transactionID: tid).encode(fingerprint: true)
        badFingerprint[badFingerprint.count - 1] ^= 1
        for bytes in [
            Message(type: .bindingRequest, transactionID: tid).adding(.init(rawValue: 0x0777), [1]).encode(),
            badFingerprint,
            Message(type: MessageType(method: .allocate, messageClass: .request), transactionID: tid).encode(),
            Message(type: .bindingIndication, transactionID: tid).encode(),
            [0x16, 0xFE, 0xFD] + [UInt8](repeating: 0, count: 30),
        ] {
            #expect(responder.fastBindingResponse(to: ByteBuffer(bytes: bytes), from: source, allocator: .init()) == nil)
        }
    }

    /// Found by fuzz-stunfastpath: integrity attributes the parser refuses (a MESSAGE-INTEGRITY that is not 20 bytes,
    /// two of them, a short MESSAGE-INTEGRITY-SHA256) made the general path drop the request, but the fast path
    /// answered it.
    @Test func malformedIntegrityIsDroppedByBothPaths() throws {
        let source = try SocketAddress(ipAddress: "192.0.2.1", port: 1)
        let tid = [UInt8](repeating: 3, count: 12)
        let request = Message(type: .bindingRequest, transactionID: tid)
        let mac = [UInt8](repeating: 1, count: 20)
        for bytes in [
            request.adding(.messageIntegrity, [1, 0, 0, 0]).encode(),
            request.adding(.messageIntegrity, mac).adding(.messageIntegrity, mac).encode(),
            request.adding(.messageIntegritySHA256, [UInt8](repeating: 1, count: 12)).encode(),
        ] {
            #expect(Self.slow(responder, bytes, source) == nil, "the general path drops it")
            #expect(responder.fastBindingResponse(to: ByteBuffer(bytes: bytes), from: source, allocator: .init()) == nil)
        }
    }
}
