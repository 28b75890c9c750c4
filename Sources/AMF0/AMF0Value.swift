import NIOCore

/// One AMF0 value (Adobe "Action Message Format -- AMF 0", section 2).
///
/// RTMP carries its commands (`connect`, `publish`, `onStatus`, ...) and FLV its
/// `onMetaData` script tags as AMF0. Decoding is bounded: nesting deeper than
/// ``AMF0Value/maxDepth`` and counts larger than the bytes left are rejected, so
/// a hostile peer can neither overflow the stack nor make us preallocate.
public enum AMF0Value: Sendable, Equatable {
    case number(Double)
    case boolean(Bool)
    /// Both the short (0x02) and the long (0x0C) string marker decode to this case.
    case string(String)
    case object(AMF0Object)
    case null
    case undefined
    /// An associative ("ECMA") array; the count field is only a hint and is ignored.
    case ecmaArray(AMF0Object)
    case strictArray([AMF0Value])
    /// Milliseconds since the Unix epoch; the time zone field is reserved (section 2.13).
    case date(Double)
    case xmlDocument(String)
    case unsupported

    /// Nesting limit for objects and arrays. Real encoders nest two levels at most.
    public static let maxDepth = 32

    enum Marker: UInt8 {
        case number = 0x00, boolean = 0x01, string = 0x02, object = 0x03, movieClip = 0x04
        case null = 0x05, undefined = 0x06, reference = 0x07, ecmaArray = 0x08, objectEnd = 0x09
        case strictArray = 0x0A, date = 0x0B, longString = 0x0C, unsupported = 0x0D
        case recordSet = 0x0E, xmlDocument = 0x0F, typedObject = 0x10, avmPlus = 0x11
    }

    /// Reads one value from the reader index of `buffer`. On error the reader index is unspecified.
    public init(parsing buffer: inout ByteBuffer) throws(AMF0Error) {
        try self.init(parsing: &buffer, depth: 0)
    }

    init(parsing buffer: inout ByteBuffer, depth: Int) throws(AMF0Error) {
        guard depth <= Self.maxDepth else { throw .nestingTooDeep }
        guard let byte = buffer.readInteger(as: UInt8.self) else { throw .truncated("type marker") }
        guard let marker = Marker(rawValue: byte) else { throw .unknownType(byte) }
        switch marker {
        case .number:
            guard let bits = buffer.readInteger(as: UInt64.self) else { throw .truncated("number") }
            self = .number(Double(bitPattern: bits))
        case .boolean:
            guard let b = buffer.readInteger(as: UInt8.self) else { throw .truncated("boolean") }
            self = .boolean(b != 0)
        case .string:
            self = .string(try Self.readString(&buffer, long: false))
        case .longString:
            self = .string(try Self.readString(&buffer, long: true))
        case .xmlDocument:
            self = .xmlDocument(try Self.readString(&buffer, long: true))
        case .object:
            self = .object(try AMF0Object(parsingProperties: &buffer, depth: depth + 1))
        case .ecmaArray:
            guard buffer.readInteger(as: UInt32.self) != nil else { throw .truncated("ECMA array count") }
            self = .ecmaArray(try AMF0Object(parsingProperties: &buffer, depth: depth + 1))
        case .strictArray:
            guard let count = buffer.readInteger(as: UInt32.self) else { throw .truncated("strict array count") }
            // Every element takes at least one byte: a count beyond the bytes left is a lie.
            guard Int(count) <= buffer.readableBytes else { throw .truncated("strict array elements") }
            var elements: [AMF0Value] = []
            for _ in 0..<count {
                elements.append(try AMF0Value(parsing: &buffer, depth: depth + 1))
            }
            self = .strictArray(elements)
        case .date:
            guard let bits = buffer.readInteger(as: UInt64.self), buffer.readInteger(as: Int16.self) != nil else {
                throw .truncated("date")
            }
            self = .date(Double(bitPattern: bits))
        case .null:
            self = .null
        case .undefined:
            self = .undefined
        case .unsupported:
            self = .unsupported
        case .objectEnd:
            throw .unexpectedObjectEnd
        case .movieClip, .reference, .recordSet, .typedObject, .avmPlus:
            throw .unsupportedType(byte)
        }
    }

    static func readString(_ buffer: inout ByteBuffer, long: Bool) throws(AMF0Error) -> String {
        let length: Int
        if long {
            guard let n = buffer.readInteger(as: UInt32.self) else { throw .truncated("long string length") }
            length = Int(n)
        } else {
            guard let n = buffer.readInteger(as: UInt16.self) else { throw .truncated("string length") }
            length = Int(n)
        }
        guard let bytes = buffer.readSlice(length: length) else { throw .truncated("string bytes") }
        return String(decoding: bytes.readableBytesView, as: UTF8.self)
    }

    /// Appends the encoded value. Strings longer than 65535 bytes use the long-string marker.
    public func write(to buffer: inout ByteBuffer) {
        switch self {
        case .number(let v):
            buffer.writeInteger(Marker.number.rawValue)
            buffer.writeInteger(v.bitPattern)
        case .boolean(let b):
            buffer.writeInteger(Marker.boolean.rawValue)
            buffer.writeInteger(UInt8(b ? 1 : 0))
        case .string(let s):
            let utf8 = s.utf8
            if utf8.count > Int(UInt16.max) {
                buffer.writeInteger(Marker.longString.rawValue)
                buffer.writeInteger(UInt32(utf8.count))
            } else {
                buffer.writeInteger(Marker.string.rawValue)
                buffer.writeInteger(UInt16(utf8.count))
            }
            buffer.writeBytes(utf8)
        case .xmlDocument(let s):
            buffer.writeInteger(Marker.xmlDocument.rawValue)
            buffer.writeInteger(UInt32(s.utf8.count))
            buffer.writeBytes(s.utf8)
        case .object(let o):
            buffer.writeInteger(Marker.object.rawValue)
            o.writeProperties(to: &buffer)
        case .ecmaArray(let o):
            buffer.writeInteger(Marker.ecmaArray.rawValue)
            buffer.writeInteger(UInt32(o.entries.count))
            o.writeProperties(to: &buffer)
        case .strictArray(let a):
            buffer.writeInteger(Marker.strictArray.rawValue)
            buffer.writeInteger(UInt32(a.count))
            for v in a { v.write(to: &buffer) }
        case .date(let ms):
            buffer.writeInteger(Marker.date.rawValue)
            buffer.writeInteger(ms.bitPattern)
            buffer.writeInteger(Int16(0))
        case .null:
            buffer.writeInteger(Marker.null.rawValue)
        case .undefined:
            buffer.writeInteger(Marker.undefined.rawValue)
        case .unsupported:
            buffer.writeInteger(Marker.unsupported.rawValue)
        }
    }

    /// Reads values until the buffer is empty: the shape of an RTMP command message body.
    public static func parseAll(_ buffer: ByteBuffer) throws(AMF0Error) -> [AMF0Value] {
        var buffer = buffer
        var values: [AMF0Value] = []
        while buffer.readableBytes > 0 {
            values.append(try AMF0Value(parsing: &buffer))
        }
        return values
    }

    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    public var numberValue: Double? { if case .number(let n) = self { n } else { nil } }
    public var boolValue: Bool? { if case .boolean(let b) = self { b } else { nil } }
    /// The properties of an object or an ECMA array.
    public var objectValue: AMF0Object? {
        switch self {
        case .object(let o), .ecmaArray(let o): o
        default: nil
        }
    }
}

extension AMF0Value: ExpressibleByStringLiteral, ExpressibleByFloatLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(booleanLiteral value: Bool) { self = .boolean(value) }
}
