/// Why audio could not be transcoded. The text comes from libavcodec or libopus where they gave one.
public enum AudioError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The decoder refused the stream's configuration (an AudioSpecificConfig it cannot use).
    case badConfiguration(String)
    /// One access unit could not be decoded; the decoder goes on with the next.
    case decodeFailed(String)
    /// Audio arrived before any configuration.
    case notConfigured
    case encoderFailed(String)

    public var description: String {
        switch self {
        case .badConfiguration(let why): "bad AudioSpecificConfig: \(why)"
        case .decodeFailed(let why): why
        case .notConfigured: "AAC frames before an AudioSpecificConfig"
        case .encoderFailed(let why): why
        }
    }
}

/// The C wrappers' error text.
func reason(_ buffer: [CChar]) -> String {
    let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}
