/// Names one live stream: `app/stream`, as in `rtmp://HOST/app/stream` and `http://HOST:8080/app/stream.flv`.
public struct StreamKey: Hashable, Sendable, CustomStringConvertible, Comparable {
    public var app: String
    public var stream: String

    /// Longest app or stream name we accept; names end up in URLs, logs and metric labels.
    public static let maxComponentLength = 128

    /// Validates both parts: non-empty, at most ``maxComponentLength`` bytes, and only characters that are
    /// safe in a URL path segment and a file name (letters, digits, `-`, `_`, `.`, not starting with `.`).
    public init?(app: String, stream: String) {
        guard Self.isValid(app), Self.isValid(stream) else { return nil }
        self.app = app
        self.stream = stream
    }

    /// `APP/STREAM`, as ``description`` writes it.
    public init?(name: String) {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        self.init(app: String(parts[0]), stream: String(parts[1]))
    }

    static func isValid(_ s: String) -> Bool {
        guard !s.isEmpty, s.utf8.count <= maxComponentLength, s.utf8.first != UInt8(ascii: ".") else { return false }
        return s.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
                || c == UInt8(ascii: "-") || c == UInt8(ascii: "_") || c == UInt8(ascii: ".")
        }
    }

    public var description: String { "\(app)/\(stream)" }

    public static func < (a: StreamKey, b: StreamKey) -> Bool { a.description < b.description }
}
