import Digest

/// A STUN message (RFC 8489 section 5, compatible with RFC 5389 clients):
///
///      0                   1                   2                   3
///      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |0 0|     STUN Message Type     |         Message Length        |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |                         Magic Cookie                          |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |                     Transaction ID (96 bits)                  |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///
/// followed by attributes (type, length, value padded to 4 bytes). A parsed message keeps its bytes, so that
/// MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and FINGERPRINT can be checked over exactly what was received.
/// Attributes after MESSAGE-INTEGRITY other than MESSAGE-INTEGRITY-SHA256 and FINGERPRINT are ignored, as
/// RFC 8489 14.5 requires.
public struct Message: Sendable, Equatable {
    public static let magicCookie: UInt32 = 0x2112_A442
    static let magicCookieBytes: [UInt8] = [0x21, 0x12, 0xA4, 0x42]
    public static let headerSize = 20
    /// Bounds what a parser accepts. STUN over UDP fits a path MTU (RFC 8489 6.1); over TCP nothing in
    /// Binding or TURN control needs more.
    public static let defaultMaximumSize = 8192
    /// XORed into the CRC-32 of FINGERPRINT ("STUN").
    public static let fingerprintXOR: UInt32 = 0x5354_554E

    public struct Attribute: Sendable, Equatable {
        public var type: AttributeType
        public var value: [UInt8]

        public init(_ type: AttributeType, _ value: [UInt8]) {
            self.type = type
            self.value = value
        }
    }

    public var type: MessageType
    /// 12 bytes.
    public var transactionID: [UInt8]
    /// In message order; MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and FINGERPRINT are not in this list (see
    /// ``encode(integrityKey:fingerprint:)`` and the `has...` properties).
    public var attributes: [Attribute]

    /// The received bytes and where its integrity attributes start (nil for a message built here).
    var received: [UInt8]?
    var integrityOffset: Int?
    var integritySHA256Offset: Int?
    var fingerprintOffset: Int?

    public init(type: MessageType, transactionID: [UInt8], attributes: [Attribute] = []) {
        self.type = type
        self.transactionID = transactionID
        self.attributes = attributes
    }

    /// Whether bytes look like STUN at all (RFC 7983: first byte 0-3, and the magic cookie), cheaply, before
    /// parsing.
    public static func isSTUN<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8, C.Index == Int {
        guard bytes.count >= headerSize else { return false }
        let s = bytes.startIndex
        return bytes[s] < 4 && bytes[s + 4] == 0x21 && bytes[s + 5] == 0x12 && bytes[s + 6] == 0xA4 && bytes[s + 7] == 0x42
    }

    /// Parses exactly one message: `bytes` must be the whole message (a UDP datagram, or one frame of a TCP
    /// stream cut by ``messageLength(header:)``).
    public init(parsing bytes: [UInt8], maximumSize: Int = Message.defaultMaximumSize) throws(STUNError) {
        guard bytes.count >= Self.headerSize else { throw .truncatedHeader }
        guard bytes.count <= maximumSize else { throw .messageTooLarge(bytes.count) }
        guard bytes[0] & 0xC0 == 0 else { throw .notSTUN }
        guard Array(bytes[4..<8]) == Self.magicCookieBytes else { throw .wrongMagicCookie }
        let length = Int(bytes[2]) << 8 | Int(bytes[3])
        guard length % 4 == 0, Self.headerSize + length == bytes.count else {
            throw .badLength(declared: length, available: bytes.count - Self.headerSize)
        }
        type = MessageType(rawValue: UInt16(bytes[0]) << 8 | UInt16(bytes[1]))
        transactionID = Array(bytes[8..<20])
        attributes = []
        received = bytes
        var i = Self.headerSize
        while i < bytes.count {
            guard i + 4 <= bytes.count else { throw .attributeOverrun(type: 0) }
            let raw = UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1])
            let valueLength = Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
            let padded = (valueLength + 3) & ~3
            guard i + 4 + padded <= bytes.count else { throw .attributeOverrun(type: raw) }
            let value = bytes[(i + 4)..<(i + 4 + valueLength)]
            if fingerprintOffset != nil { throw .attributeAfterFingerprint }
            switch AttributeType(rawValue: raw) {
            case .messageIntegrity:
                guard integrityOffset == nil else { throw .duplicateMessageIntegrity }
                guard Self.takesValueLength(.messageIntegrity, valueLength) else { throw .malformedAttribute(type: raw) }
                integrityOffset = i
            case .messageIntegritySHA256:
                guard integritySHA256Offset == nil else { throw .duplicateMessageIntegrity }
                guard Self.takesValueLength(.messageIntegritySHA256, valueLength) else { throw .malformedAttribute(type: raw) }
                integritySHA256Offset = i
            case .fingerprint:
                guard Self.takesValueLength(.fingerprint, valueLength) else { throw .malformedAttribute(type: raw) }
                fingerprintOffset = i
            default:
                // RFC 8489 14.5: what follows MESSAGE-INTEGRITY (but the two above) is ignored.
                if integrityOffset == nil && integritySHA256Offset == nil {
                    attributes.append(Attribute(AttributeType(rawValue: raw), Array(value)))
                }
            }
            i += 4 + padded
        }
    }

    /// Whether the parser takes an attribute of `type` with a value of `length` bytes: MESSAGE-INTEGRITY is 20,
    /// MESSAGE-INTEGRITY-SHA256 16 to 32 in whole words, FINGERPRINT 4 (RFC 8489 14.5-14.7); other attributes' lengths
    /// are their accessors' business. The Binding fast path asks the same, so the two never disagree.
    @inline(__always)
    public static func takesValueLength(_ type: AttributeType, _ length: Int) -> Bool {
        switch type {
        case .messageIntegrity: length == 20
        case .messageIntegritySHA256: (16...32).contains(length) && length % 4 == 0
        case .fingerprint: length == 4
        default: true
        }
    }

    /// The whole message's size from its first 4 bytes, for cutting a TCP stream into messages (RFC 8489 6.2.2).
    public static func messageLength(header: [UInt8]) -> Int? {
        guard header.count >= 4 else { return nil }
        return headerSize + (Int(header[2]) << 8 | Int(header[3]))
    }

    // MARK: - Attributes

    public func attribute(_ type: AttributeType) -> [UInt8]? { attributes.first { $0.type == type }?.value }

    public var hasMessageIntegrity: Bool { integrityOffset != nil }
    public var hasMessageIntegritySHA256: Bool { integritySHA256Offset != nil }
    public var hasFingerprint: Bool { fingerprintOffset != nil }

    /// USERNAME (RFC 8489 14.3), UTF-8.
    public var username: String? { attribute(.username).map { String(decoding: $0, as: UTF8.self) } }
    public var software: String? { attribute(.software).map { String(decoding: $0, as: UTF8.self) } }
    public var realm: String? { attribute(.realm).map { String(decoding: $0, as: UTF8.self) } }
    public var nonce: String? { attribute(.nonce).map { String(decoding: $0, as: UTF8.self) } }
    /// PRIORITY (RFC 8445 7.1.1).
    public var priority: UInt32? { attribute(.priority).flatMap { Self.integer($0) }.map { UInt32(truncatingIfNeeded: $0) } }
    /// USE-CANDIDATE (RFC 8445 7.1.2): the controlling agent nominates this pair.
    public var useCandidate: Bool { attribute(.useCandidate) != nil }
    /// ICE-CONTROLLING / ICE-CONTROLLED tie-breakers (RFC 8445 7.1.3).
    public var iceControlling: UInt64? { attribute(.iceControlling).flatMap { Self.integer($0) } }
    public var iceControlled: UInt64? { attribute(.iceControlled).flatMap { Self.integer($0) } }

    public func xorMappedAddress() throws(STUNError) -> Address? {
        guard let v = attribute(.xorMappedAddress) else { return nil }
        return try Address(value: v[...], xor: true, transactionID: transactionID, type: AttributeType.xorMappedAddress.rawValue)
    }

    public func mappedAddress() throws(STUNError) -> Address? {
        guard let v = attribute(.mappedAddress) else { return nil }
        return try Address(value: v[...], xor: false, transactionID: transactionID, type: AttributeType.mappedAddress.rawValue)
    }

    public func errorCode() throws(STUNError) -> ErrorCode? {
        guard let v = attribute(.errorCode) else { return nil }
        return try ErrorCode(value: v)
    }

    /// Comprehension-required attributes (type below 0x8000) this codec does not know: a request carrying any
    /// gets a 420 listing them (RFC 8489 6.3.1).
    public var unknownComprehensionRequired: [AttributeType] {
        attributes.map(\.type).filter { $0.isComprehensionRequired && !$0.isKnown }
    }

    static func integer(_ bytes: [UInt8]) -> UInt64? {
        guard bytes.count == 4 || bytes.count == 8 else { return nil }
        return bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }

    // MARK: - Integrity and fingerprint

    /// RFC 8489 14.7: CRC-32 of the message up to FINGERPRINT, with the length covering it, XOR "STUN".
    /// Nil when the message has none.
    public var fingerprintIsValid: Bool? {
        guard let bytes = received, let at = fingerprintOffset else { return nil }
        let expected = bytes[(at + 4)..<(at + 8)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        return Self.fingerprint(Self.withLength(bytes[..<at], coveringTo: at + 8)) == expected
    }

    /// RFC 8489 14.5: HMAC-SHA1 over the message up to MESSAGE-INTEGRITY, with the length covering it. The key is
    /// the password for short-term credentials (ICE), ``longTermKey(username:realm:password:)`` for long-term
    /// ones. Nil when the message has no MESSAGE-INTEGRITY.
    public func messageIntegrityIsValid(key: [UInt8]) -> Bool? {
        guard let bytes = received, let at = integrityOffset else { return nil }
        let mac = Self.hmacSHA1(key: key, Self.withLength(bytes[..<at], coveringTo: at + 24))
        return Self.constantTimeEqual(mac, Array(bytes[(at + 4)..<(at + 24)]))
    }

    /// RFC 8489 14.6: HMAC-SHA256, possibly truncated to the attribute's length. Nil when absent.
    public func messageIntegritySHA256IsValid(key: [UInt8]) -> Bool? {
        guard let bytes = received, let at = integritySHA256Offset else { return nil }
        let length = Int(bytes[at + 2]) << 8 | Int(bytes[at + 3])
        let mac = Self.hmacSHA256(key: key, Self.withLength(bytes[..<at], coveringTo: at + 4 + length))
        return Self.constantTimeEqual(Array(mac.prefix(length)), Array(bytes[(at + 4)..<(at + 4 + length)]))
    }

    /// Whether the message authenticates under `key`: by MESSAGE-INTEGRITY-SHA256 when present (it is accepted,
    /// never required), else by MESSAGE-INTEGRITY. False when it carries neither.
    public func isAuthentic(key: [UInt8]) -> Bool {
        if let sha256 = messageIntegritySHA256IsValid(key: key) { return sha256 }
        return messageIntegrityIsValid(key: key) ?? false
    }

    /// MD5(username ":" realm ":" password), the long-term credential key (RFC 8489 9.2.2). The password is
    /// used as given (no SASLprep).
    public static func longTermKey(username: String, realm: String, password: String) -> [UInt8] {
        Digest.md5(Array("\(username):\(realm):\(password)".utf8))
    }

    // MARK: - Writing

    /// The message on the wire, with MESSAGE-INTEGRITY under `integrityKey` and a FINGERPRINT when asked.
    public func encode(integrityKey: [UInt8]? = nil, fingerprint: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Self.headerSize + attributes.reduce(0) { $0 + 4 + (($1.value.count + 3) & ~3) } + 32)
        let t = type.rawValue
        out += [UInt8(t >> 8), UInt8(t & 0xFF), 0, 0] + Self.magicCookieBytes + transactionID
        for a in attributes { Self.append(a.type, a.value, to: &out) }
        if let key = integrityKey {
            let at = out.count
            let mac = Self.hmacSHA1(key: key, Self.withLength(out[...], coveringTo: at + 24))
            Self.append(.messageIntegrity, mac, to: &out)
        }
        if fingerprint {
            let at = out.count
            let crc = Self.fingerprint(Self.withLength(out[...], coveringTo: at + 8))
            Self.append(.fingerprint, [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)], to: &out)
        }
        Self.setLength(&out, out.count - Self.headerSize)
        return out
    }

    static func append(_ type: AttributeType, _ value: [UInt8], to out: inout [UInt8]) {
        let t = type.rawValue
        let n = min(value.count, 0xFFFF)
        out += [UInt8(t >> 8), UInt8(t & 0xFF), UInt8(n >> 8), UInt8(n & 0xFF)]
        out += value.prefix(n)
        out += [UInt8](repeating: 0, count: ((n + 3) & ~3) - n)
    }

    static func setLength(_ bytes: inout [UInt8], _ length: Int) {
        bytes[2] = UInt8(length >> 8 & 0xFF)
        bytes[3] = UInt8(length & 0xFF)
    }

    /// The bytes before an integrity attribute with the header's length as if the message ended at `end`.
    static func withLength(_ prefix: ArraySlice<UInt8>, coveringTo end: Int) -> [UInt8] {
        var copy = Array(prefix)
        setLength(&copy, end - headerSize)
        return copy
    }

    static func fingerprint(_ bytes: [UInt8]) -> UInt32 { CRC32.checksum(bytes) ^ fingerprintXOR }

    static func hmacSHA1(key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        Digest.hmacSHA1(key: key, data)
    }

    static func hmacSHA256(key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        Digest.hmacSHA256(key: key, data)
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    public static func == (lhs: Message, rhs: Message) -> Bool {
        lhs.type == rhs.type && lhs.transactionID == rhs.transactionID && lhs.attributes == rhs.attributes
    }
}

extension Message {
    /// Adds an attribute (builder style).
    public func adding(_ type: AttributeType, _ value: [UInt8]) -> Message {
        var m = self
        m.attributes.append(Attribute(type, value))
        return m
    }

    public func adding(_ type: AttributeType, address: Address) -> Message {
        adding(type, address.value(xor: type == .xorMappedAddress || type == .xorPeerAddress || type == .xorRelayedAddress,
                                   transactionID: transactionID))
    }

    /// A success response to this request with XOR-MAPPED-ADDRESS `mapped` (a Binding response).
    public func bindingSuccess(mapped: Address) -> Message {
        Message(type: MessageType(method: type.method, messageClass: .successResponse), transactionID: transactionID)
            .adding(.xorMappedAddress, address: mapped)
    }

    /// An error response to this request.
    public func errorResponse(_ code: ErrorCode, unknown: [AttributeType] = []) -> Message {
        var m = Message(type: MessageType(method: type.method, messageClass: .errorResponse), transactionID: transactionID)
            .adding(.errorCode, code.value)
        if !unknown.isEmpty {
            m = m.adding(.unknownAttributes, unknown.flatMap { [UInt8($0.rawValue >> 8), UInt8($0.rawValue & 0xFF)] })
        }
        return m
    }
}
