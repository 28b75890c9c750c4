/// The STUN message type: a 12-bit method and a 2-bit class interleaved in 14 bits (RFC 8489 section 5):
///
///      0                 1
///      2  3  4 5 6 7 8 9 0 1 2 3 4 5
///     +--+--+-+-+-+-+-+-+-+-+-+-+-+-+
///     |M |M |M|M|M|C|M|M|M|C|M|M|M|M|
///     |11|10|9|8|7|1|6|5|4|0|3|2|1|0|
///     +--+--+-+-+-+-+-+-+-+-+-+-+-+-+
public struct MessageType: Hashable, Sendable, CustomStringConvertible {
    public var method: Method
    public var messageClass: MessageClass

    public init(method: Method, messageClass: MessageClass) {
        self.method = method
        self.messageClass = messageClass
    }

    /// Any 14-bit value decodes; the two top bits are the caller's to check.
    public init(rawValue: UInt16) {
        let m = rawValue & 0x000F | (rawValue & 0x00E0) >> 1 | (rawValue & 0x3E00) >> 2
        let c = (rawValue & 0x0010) >> 4 | (rawValue & 0x0100) >> 7
        method = Method(rawValue: m)
        messageClass = MessageClass(rawValue: UInt8(c))!
    }

    public var rawValue: UInt16 {
        let m = method.rawValue & 0x0FFF
        let c = UInt16(messageClass.rawValue)
        return m & 0x000F | (m & 0x0070) << 1 | (m & 0x0F80) << 2 | (c & 1) << 4 | (c & 2) << 7
    }

    public var description: String { "\(method) \(messageClass)" }

    public static let bindingRequest = MessageType(method: .binding, messageClass: .request)
    public static let bindingSuccess = MessageType(method: .binding, messageClass: .successResponse)
    public static let bindingError = MessageType(method: .binding, messageClass: .errorResponse)
    public static let bindingIndication = MessageType(method: .binding, messageClass: .indication)
}

/// A STUN method. Binding is RFC 8489's; the TURN methods (RFC 8656) are named for the relay that comes next.
public struct Method: Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let binding = Method(rawValue: 0x001)
    public static let allocate = Method(rawValue: 0x003)
    public static let refresh = Method(rawValue: 0x004)
    public static let send = Method(rawValue: 0x006)
    public static let data = Method(rawValue: 0x007)
    public static let createPermission = Method(rawValue: 0x008)
    public static let channelBind = Method(rawValue: 0x009)

    public var description: String {
        switch self {
        case .binding: "Binding"
        case .allocate: "Allocate"
        case .refresh: "Refresh"
        case .send: "Send"
        case .data: "Data"
        case .createPermission: "CreatePermission"
        case .channelBind: "ChannelBind"
        default: "method 0x\(String(rawValue, radix: 16))"
        }
    }
}

public enum MessageClass: UInt8, Sendable, CustomStringConvertible {
    case request = 0, indication = 1, successResponse = 2, errorResponse = 3

    public var description: String {
        switch self {
        case .request: "request"
        case .indication: "indication"
        case .successResponse: "success response"
        case .errorResponse: "error response"
        }
    }
}
