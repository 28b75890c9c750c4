import FuzzSupport
import Digest
import Foundation
import HTTPTypes
import Hummingbird
@testable import Signaling

/// Room tokens (JWT, HS256 only) and the `Authorization: Bearer` header. The input is taken three ways: as a whole
/// token, which must never verify (it is not signed with the secret); as a header and claims (split at the first
/// 0xFF byte) the harness signs, which verifies only with `alg` HS256 and claims that hold, and then signs and
/// verifies again to the same token; and as an Authorization header value, whose bearer token is read trimmed.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let now = 1_800_000_000.0
    let text = String(decoding: bytes, as: UTF8.self)
    if let forged = try? RoomToken(verifying: text, secret: secret, now: now) { fatalError("an unsigned token verified: \(forged)") }

    let cut = bytes.firstIndex(of: 0xFF) ?? 0
    let header = bytes[..<cut].isEmpty ? Array(#"{"alg":"HS256"}"#.utf8) : Array(bytes[..<cut])
    let claims = Array(bytes[min(cut + 1, bytes.count)...])
    let input = RoomToken.base64url(Data(header)) + "." + RoomToken.base64url(Data(claims))
    let token = input + "." + RoomToken.base64url(Data(Digest.hmacSHA256(key: Array(secret.utf8), Array(input.utf8))))
    if let t = try? RoomToken(verifying: token, secret: secret, now: now) {
        check((RoomToken.object(Data(header))?["alg"] as? String) == "HS256", "verified with header \(String(decoding: header, as: UTF8.self))")
        check(!t.identity.isEmpty && Double(t.expires) + RoomToken.skew > now && Double(t.notBefore ?? 0) - RoomToken.skew <= now, "\(t)")
        let again: RoomToken
        do { again = try RoomToken(verifying: t.signed(secret: secret), secret: secret, now: now) } catch {
            fatalError("a token the server signed does not verify: \(error) (\(t))")
        }
        check(again == t, "\(t) signed and verified became \(again)")
        check((try? RoomToken(verifying: t.signed(secret: secret + "x"), secret: secret, now: now)) == nil, "another secret's token verified")
    }

    if HTTPField.isValidValue(text) {
        var fields = HTTPFields()
        fields[.authorization] = text
        let request = Request(head: HTTPRequest(method: .get, scheme: "http", authority: "127.0.0.1", path: "/", headerFields: fields),
                              body: .init(buffer: .init()))
        let bearer = OperatorAuthentication.bearerToken(request)
        check((bearer != nil) == text.lowercased().hasPrefix("bearer "), "bearer \(String(describing: bearer)) from \(text.debugDescription)")
        if let bearer {
            check(bearer == bearer.trimmingCharacters(in: .whitespaces), "an untrimmed bearer token \(bearer.debugDescription)")
        }
    }
    return 0
}

let secret = "room-secret-0123456789"
