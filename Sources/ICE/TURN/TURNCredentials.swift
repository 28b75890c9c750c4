import Digest
import Foundation
import STUN

/// Who may allocate a relay (RFC 8656 section 9.2, long-term credentials of RFC 8489 9.2): static users, and
/// the time-limited "TURN REST" credentials coturn, eturnal and pion share (draft-uberti-behave-turn-rest):
/// the username is `EXPIRY:USER` (a Unix time, then the user), the password base64(HMAC-SHA1(secret, username)).
/// Several secrets are accepted at once, so that one can be rotated while credentials minted with the old one
/// still work (a leaked secret mints credentials until it is replaced).
public struct TURNCredentials: Sendable {
    public var realm: String
    /// Static users: name to password (`--turn-user NAME:PASSWORD`).
    public var users: [String: String]
    /// REST secrets, the first used for minting (`--turn-secret`, repeatable).
    public var secrets: [String]

    public init(realm: String = "liveswarm", users: [String: String] = [:], secrets: [String] = []) {
        (self.realm, self.users, self.secrets) = (realm, users, secrets)
    }

    public var isEmpty: Bool { users.isEmpty && secrets.isEmpty }

    /// A username's possible keys (MD5(username:realm:password)), with the user it counts against (the USER of
    /// a REST username, for quotas) and its expiry.
    public struct Candidate: Sendable, Equatable {
        public var key: [UInt8]
        public var user: String
        /// Unix seconds; nil for a static user.
        public var expiry: Double?
        /// What the username allows beyond the defaults (the part after USER's last `~`, see ``Scope``).
        public var scope: Scope
    }

    /// What credentials minted for a session may reach. A REST user ending in `~sfu` (minted by LiveSwarm for a
    /// WHIP, WHEP or room session) reaches the SFU's media port only: WHIP and WHEP are open to whoever can POST,
    /// and their relays must not be general proxies.
    public enum Scope: Sendable, Equatable {
        case any
        case sfuOnly
    }

    public static let sfuScopeSuffix = "~sfu"

    /// Every key `username` may have. A static user wins over a REST-shaped name; a REST username gives one
    /// candidate per secret (the message's integrity picks the right one). Empty when the name is unknown.
    public func candidates(for username: String) -> [Candidate] {
        if let password = users[username] {
            return [Candidate(key: Message.longTermKey(username: username, realm: realm, password: password), user: username,
                              expiry: nil, scope: .any)]
        }
        guard let (expiry, user) = Self.restParts(username) else { return [] }
        let scope: Scope = user.hasSuffix(Self.sfuScopeSuffix) ? .sfuOnly : .any
        return secrets.map { secret in
            Candidate(key: Message.longTermKey(username: username, realm: realm, password: Self.restPassword(secret: secret, username: username)),
                      user: user, expiry: expiry, scope: scope)
        }
    }

    /// `EXPIRY:USER`, or the bare expiry coturn also takes (the user is then empty).
    static func restParts(_ username: String) -> (Double, String)? {
        let parts = username.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard let first = parts.first, !first.isEmpty, first.allSatisfy(\.isASCII), let expiry = UInt64(first) else { return nil }
        return (Double(expiry), parts.count == 2 ? String(parts[1]) : "")
    }

    /// base64(HMAC-SHA1(secret, username)).
    public static func restPassword(secret: String, username: String) -> String {
        Data(Digest.hmacSHA1(key: Array(secret.utf8), Array(username.utf8))).base64EncodedString()
    }

    /// REST credentials valid for `ttl` seconds from `now` (Unix seconds), under the first secret; nil without one.
    public func mint(user: String, ttl: Double, now: Double) -> (username: String, password: String)? {
        guard let secret = secrets.first else { return nil }
        let username = "\(UInt64(max(0, now + ttl))):\(user)"
        return (username, Self.restPassword(secret: secret, username: username))
    }
}

/// Nonces that cost no memory (as coturn 4.17's stateless nonce): the issue time and a MAC over it and the
/// client's address, under a key made at start. A nonce older than ``lifetime`` is stale (438, RFC 8489
/// 9.2.4), and so is one made for another address or by another process.
public struct NonceIssuer: Sendable {
    let key: [UInt8]
    /// coturn's `--stale-nonce` default.
    public var lifetime: Double

    public init(key: [UInt8] = (0..<20).map { _ in UInt8.random(in: 0...255) }, lifetime: Double = 600) {
        (self.key, self.lifetime) = (key, lifetime)
    }

    /// A nonce for `client` (its IP as bytes) at `now` (seconds on any clock that the checks share).
    public func make(for client: [UInt8], now: Double) -> String {
        let issued = String(UInt64(max(0, now * 1000)), radix: 16)
        return issued + "." + mac(issued, client)
    }

    func mac(_ issued: String, _ client: [UInt8]) -> String {
        Digest.hmacSHA256(key: key, Array(issued.utf8) + client).prefix(12).map { String(format: "%02x", $0) }.joined()
    }

    public func isFresh(_ nonce: String, for client: [UInt8], now: Double) -> Bool {
        let parts = nonce.split(separator: ".", maxSplits: 1)
        guard parts.count == 2, let ms = UInt64(parts[0], radix: 16) else { return false }
        let issued = String(parts[0])
        let expected = Array(mac(issued, client).utf8), given = Array(parts[1].utf8)
        // In constant time, as any MAC check.
        guard expected.count == given.count, zip(expected, given).reduce(UInt8(0), { $0 | ($1.0 ^ $1.1) }) == 0 else { return false }
        let age = now - Double(ms) / 1000
        return age >= -1 && age <= lifetime
    }
}
