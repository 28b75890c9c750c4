/// The short-term credentials of one side of an ICE session (RFC 8445 5.3, RFC 8839 5.4): `a=ice-ufrag` and
/// `a=ice-pwd` in its SDP. A connectivity check to us carries USERNAME "OURS:THEIRS" and MESSAGE-INTEGRITY
/// keyed with our password.
public struct ICECredentials: Sendable, Hashable {
    public var ufrag: String
    public var password: String

    public init(ufrag: String, password: String) {
        self.ufrag = ufrag
        self.password = password
    }

    /// ice-char (RFC 8839 5.4): ALPHA / DIGIT / "+" / "/".
    static let iceChars = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")

    /// Fresh credentials from the system's secure generator: an 8-character ufrag (RFC 8445 asks for at least
    /// 24 bits of randomness; this is 48) and a 24-character password (at least 128 bits; this is 144).
    public static func random() -> ICECredentials {
        var rng = SystemRandomNumberGenerator()
        func string(_ n: Int) -> String { String((0..<n).map { _ in iceChars[Int(rng.next() % 64)] }) }
        return ICECredentials(ufrag: string(8), password: string(24))
    }

    /// Whether a ufrag or password from an SDP is well formed: ice-chars only, within the RFC's lengths.
    public static func isValid(ufrag: String) -> Bool {
        (4...256).contains(ufrag.utf8.count) && ufrag.utf8.allSatisfy(isIceChar)
    }

    public static func isValid(password: String) -> Bool {
        (22...256).contains(password.utf8.count) && password.utf8.allSatisfy(isIceChar)
    }

    static func isIceChar(_ c: UInt8) -> Bool {
        (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x2B || c == 0x2F
    }
}
