/// Why a codec parser rejected its input.
public enum CodecError: Error, Equatable, Sendable {
    /// The input ended inside the named field.
    case truncated(String)
    /// A field holds a value the specification forbids; the payload says what.
    case invalid(String)
    /// The input is well formed but uses a feature these parsers do not model.
    case unsupported(String)
}
