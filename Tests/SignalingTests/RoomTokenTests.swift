import Digest
import Foundation
import Signaling
import Testing

/// The room tokens: HS256 JWTs (RFC 7519, RFC 7518 3.2), checked against a token signed by hand here, and every
/// way one can be wrong.
@Suite struct RoomTokenTests {
    static let secret = "s3cret"
    static let now = 1_800_000_000.0

    static func b64(_ s: String) -> String { b64(Array(s.utf8)) }
    static func b64(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// A token put together here, not by RoomToken: header and claims as given, signed with `secret`.
    static func token(header: String = #"{"alg":"HS256","typ":"JWT"}"#, claims: String, secret: String = secret) -> String {
        let input = b64(header) + "." + b64(claims)
        return input + "." + b64(Digest.hmacSHA256(key: Array(secret.utf8), Array(input.utf8)))
    }

    @Test func aHandSignedTokenIsRead() throws {
        let t = Self.token(claims: #"{"room":"standup","sub":"alice","exp":1800000600,"nbf":1799999990,"publish":false,"extra":[1]}"#)
        let token = try RoomToken(verifying: t, secret: Self.secret, now: Self.now)
        #expect(token == RoomToken(room: "standup", identity: "alice", expires: 1_800_000_600, notBefore: 1_799_999_990, canPublish: false))
    }

    @Test func signedThenVerifiedIsTheSame() throws {
        let token = RoomToken(room: "r.1", identity: "bob", expires: Int(Self.now) + 60, notBefore: Int(Self.now))
        #expect(try RoomToken(verifying: token.signed(secret: Self.secret), secret: Self.secret, now: Self.now) == token)
        #expect(token.canPublish)
    }

    @Test func publishDefaultsToAllowed() throws {
        let t = Self.token(claims: #"{"room":"r","sub":"a","exp":1800000600}"#)
        #expect(try RoomToken(verifying: t, secret: Self.secret, now: Self.now).canPublish)
    }

    @Test(arguments: [
        // alg none, unsigned: the classic forgery.
        (Self.b64(#"{"alg":"none"}"#) + "." + Self.b64(#"{"room":"r","sub":"a","exp":1800000600}"#) + ".", RoomToken.Failure.algorithm("none")),
        (Self.token(header: #"{"alg":"HS512"}"#, claims: #"{"room":"r","sub":"a","exp":1800000600}"#), .algorithm("HS512")),
        (Self.token(header: #"{"alg":"RS256"}"#, claims: #"{"room":"r","sub":"a","exp":1800000600}"#), .algorithm("RS256")),
        (Self.token(claims: #"{"room":"r","sub":"a","exp":1800000600}"#, secret: "other"), .signature),
        (Self.token(claims: #"{"room":"r","sub":"a","exp":1799999989}"#), .expired),
        (Self.token(claims: #"{"room":"r","sub":"a","exp":1800000600,"nbf":1800000011}"#), .notYetValid),
        (Self.token(claims: #"{"sub":"a","exp":1800000600}"#), .malformed("the claims are not JSON with a string room and sub and a numeric exp")),
        (Self.token(claims: #"{"room":"r","sub":"a","exp":"soon"}"#), .malformed("the claims are not JSON with a string room and sub and a numeric exp")),
        (Self.token(claims: #"{"room":"r","sub":"a","exp":1800000600,"publish":"yes"}"#),
         .malformed("the claims are not JSON with a string room and sub and a numeric exp")),
        (Self.token(claims: #"{"room":"r","sub":"","exp":1800000600}"#), .malformed("the sub (identity) claim is empty")),
        ("a.b", .malformed("expected three parts separated by '.'")),
        ("!!.e30.e30", .malformed("the header is not base64url JSON")),
        (Self.b64(#"{"typ":"JWT"}"#) + ".e30.e30", .malformed("no alg in the header")),
        (Self.b64(#"{"alg":"HS256"}"#) + ".e30.***", .malformed("the signature is not base64url")),
    ])
    func refused(token: String, failure: RoomToken.Failure) {
        #expect(throws: failure) { try RoomToken(verifying: token, secret: Self.secret, now: Self.now) }
    }

    @Test func skewIsTenSeconds() throws {
        let t = Self.token(claims: #"{"room":"r","sub":"a","exp":1799999991,"nbf":1800000009}"#)
        #expect(try RoomToken(verifying: t, secret: Self.secret, now: Self.now).identity == "a")
    }

    /// A flipped bit anywhere in the signature is refused.
    @Test func everyTamperedSignatureIsRefused() throws {
        let t = RoomToken(room: "r", identity: "a", expires: Int(Self.now) + 60).signed(secret: Self.secret)
        let parts = t.split(separator: ".").map(String.init)
        var sig = Array(Data(base64Encoded: parts[2].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/") + "=")!)
        for i in 0..<sig.count {
            sig[i] ^= 1
            let forged = parts[0] + "." + parts[1] + "." + Self.b64(sig)
            #expect(throws: RoomToken.Failure.signature) { try RoomToken(verifying: forged, secret: Self.secret, now: Self.now) }
            sig[i] ^= 1
        }
    }
}
