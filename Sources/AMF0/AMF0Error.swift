/// Why an AMF0 value could not be decoded.
public enum AMF0Error: Error, Equatable, Sendable {
    /// The input ended inside the named field.
    case truncated(String)
    /// A type marker that AMF0 does not define.
    case unknownType(UInt8)
    /// A marker AMF0 defines but RTMP peers never send (movie clip, reference, record set, typed object, AVM+).
    case unsupportedType(UInt8)
    /// An object-end marker where a value was expected.
    case unexpectedObjectEnd
    /// Objects or arrays nested deeper than ``AMF0Value/maxDepth``.
    case nestingTooDeep
}
