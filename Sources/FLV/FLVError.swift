/// Why an FLV parser rejected its input.
public enum FLVError: Error, Equatable, Sendable {
    /// The input ended inside the named field.
    case truncated(String)
    /// A field holds a value these parsers refuse; the payload says what.
    case invalid(String)
}
