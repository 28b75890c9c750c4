import Digest
import Foundation

/// A room admission: a JWT (RFC 7519) signed with HMAC-SHA256 (RFC 7518 3.2) with the server's room secret.
///
/// Only `HS256` is accepted, never `none` nor any other algorithm, whatever the header says (RFC 8725 3.1: the
/// verifier decides the algorithm). Claims: `room`, `sub` (the identity), `exp`, optional `nbf`, and `publish`
/// (default true). Written on ``Digest``'s HMAC so no second crypto library comes into the build.
public struct RoomToken: Sendable, Equatable {
    public var room: String
    public var identity: String
    /// Seconds since 1970.
    public var expires: Int
    public var notBefore: Int?
    public var canPublish: Bool

    /// Clock skew allowed on `exp` and `nbf`, in seconds: machines a few seconds apart must not refuse each other.
    public static let skew = 10.0

    public init(room: String, identity: String, expires: Int, notBefore: Int? = nil, canPublish: Bool = true) {
        (self.room, self.identity, self.expires, self.notBefore, self.canPublish) = (room, identity, expires, notBefore, canPublish)
    }

    public enum Failure: Error, Equatable, Sendable, CustomStringConvertible {
        /// Not three base64url parts of JSON, or a required claim missing or of the wrong type.
        case malformed(String)
        /// A header `alg` other than HS256.
        case algorithm(String)
        /// Not signed with this secret.
        case signature
        case expired
        case notYetValid

        public var description: String {
            switch self {
            case .malformed(let why): "the token is not a valid JWT: \(why)"
            case .algorithm(let alg): "the token's algorithm is \(alg); only HS256 is accepted"
            case .signature: "the token is not signed with this server's room secret"
            case .expired: "the token has expired"
            case .notYetValid: "the token is not valid yet (nbf)"
            }
        }
    }

    /// The compact serialization: `header.claims.signature`.
    public func signed(secret: String) -> String {
        var claims: [String: Any] = ["room": room, "sub": identity, "exp": expires, "publish": canPublish]
        if let notBefore { claims["nbf"] = notBefore }
        let header = Self.base64url(Data(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
        let body = Self.base64url((try? JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys])) ?? Data())
        let input = header + "." + body
        return input + "." + Self.base64url(Data(Digest.hmacSHA256(key: Array(secret.utf8), Array(input.utf8))))
    }

    /// Checks the signature first (nothing of an unsigned token is believed), then the algorithm and the times.
    public init(verifying token: String, secret: String, now: Double) throws(Failure) {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .malformed("expected three parts separated by '.'") }
        guard let headerData = Self.decode(parts[0]), let header = Self.object(headerData) else { throw .malformed("the header is not base64url JSON") }
        guard let alg = header["alg"] as? String else { throw .malformed("no alg in the header") }
        guard alg == "HS256" else { throw .algorithm(alg) }
        guard let signature = Self.decode(parts[2]) else { throw .malformed("the signature is not base64url") }
        let expected = Digest.hmacSHA256(key: Array(secret.utf8), Array("\(parts[0]).\(parts[1])".utf8))
        guard Self.constantTimeEqual(Array(signature), expected) else { throw .signature }
        guard let claimsData = Self.decode(parts[1]) else { throw .malformed("the claims are not base64url") }
        let claims: Claims
        do { claims = try JSONDecoder().decode(Claims.self, from: claimsData) } catch {
            throw .malformed("the claims are not JSON with a string room and sub and a numeric exp")
        }
        guard !claims.sub.isEmpty else { throw .malformed("the sub (identity) claim is empty") }
        guard Double(claims.exp) + Self.skew > now else { throw .expired }
        if let nbf = claims.nbf, Double(nbf) - Self.skew > now { throw .notYetValid }
        self.init(room: claims.room, identity: claims.sub, expires: claims.exp, notBefore: claims.nbf, canPublish: claims.publish ?? true)
    }

    /// The claims LiveSwarm reads; others are ignored. Times are whole seconds (RFC 7519 NumericDate; a
    /// fraction is refused rather than rounded).
    struct Claims: Decodable {
        var room: String
        var sub: String
        var exp: Int
        var nbf: Int?
        var publish: Bool?
    }

    static func object(_ data: Data) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }

    static func base64url(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ part: Substring) -> Data? {
        guard part.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else { return nil }
        var s = part.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        guard s.count % 4 != 1 else { return nil }
        s += String(repeating: "=", count: (4 - s.count % 4) % 4)
        return Data(base64Encoded: s)
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in a.indices { diff |= a[i] ^ b[i] }
        return diff == 0
    }
}
