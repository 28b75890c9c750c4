/// ERROR-CODE (RFC 8489 14.8): class and number, and a reason phrase.
public struct ErrorCode: Hashable, Sendable {
    public var code: Int
    public var reason: String

    public init(_ code: Int, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public static let tryAlternate = ErrorCode(300, "Try Alternate")
    public static let badRequest = ErrorCode(400, "Bad Request")
    public static let unauthenticated = ErrorCode(401, "Unauthenticated")
    public static let unknownAttribute = ErrorCode(420, "Unknown Attribute")
    public static let forbidden = ErrorCode(403, "Forbidden")
    public static let allocationMismatch = ErrorCode(437, "Allocation Mismatch")
    public static let staleNonce = ErrorCode(438, "Stale Nonce")
    public static let addressFamilyNotSupported = ErrorCode(440, "Address Family not Supported")
    public static let wrongCredentials = ErrorCode(441, "Wrong Credentials")
    public static let unsupportedTransportProtocol = ErrorCode(442, "Unsupported Transport Protocol")
    public static let peerAddressFamilyMismatch = ErrorCode(443, "Peer Address Family Mismatch")
    public static let allocationQuotaReached = ErrorCode(486, "Allocation Quota Reached")
    public static let insufficientCapacity = ErrorCode(508, "Insufficient Capacity")
    public static let roleConflict = ErrorCode(487, "Role Conflict")
    public static let serverError = ErrorCode(500, "Server Error")

    public var value: [UInt8] {
        [0, 0, UInt8(code / 100 & 0x7), UInt8(code % 100)] + Array(reason.utf8.prefix(763))
    }

    init(value: [UInt8]) throws(STUNError) {
        guard value.count >= 4, (3...6).contains(value[2] & 0x7), value[3] < 100 else {
            throw .malformedAttribute(type: AttributeType.errorCode.rawValue)
        }
        code = Int(value[2] & 0x7) * 100 + Int(value[3])
        reason = String(decoding: value[4...], as: UTF8.self)
    }
}
