import STUN

/// Which peers a TURN allocation may reach (RFC 8656 section 21.3: a relay must not become a proxy into the
/// networks behind it). Safe by default, unlike the servers it is measured against (`../shared/anchors/turn.md`):
/// coturn 4.6.1 relays to RFC 1918 and CGNAT addresses and took `::ffff:127.0.0.1` for a public peer
/// (CVE-2026-27624); pion/turn admits every peer.
///
/// A peer address is first made canonical: IPv4 carried inside IPv6 (mapped, compatible, SIIT, NAT64, 6to4)
/// becomes the IPv4 address it carries, so that no spelling reaches what the plain one cannot. Teredo is refused
/// outright (its embedded address is the client's, obfuscated). Then:
/// - the server's own addresses: a permission is granted (the SFU's media port and the relays live there), but
///   each packet is checked for its port: only the media ports and live relays are reachable, never HTTP, RTMP,
///   the STUN/TURN listeners or the metrics. Permissions ignore ports (RFC 8656 9), so this check runs on every
///   Send and ChannelData packet;
/// - the operator's allow-list (a LAN deployment), then loopback when allowed (tests only);
/// - everything in ``denied`` is refused: with 403 on CreatePermission and ChannelBind, silently per packet.
public struct PeerPolicy: Sendable {
    /// Canonical IPs (4 or 16 bytes) that are this server's: advertised hosts, the external IP, listen addresses.
    public var ownAddresses: Set<[UInt8]>
    /// The server listens on a wildcard or loopback address: every loopback address reaches it, so each is its own.
    public var ownLoopback: Bool
    /// Ports on the server's own addresses that peers may be relayed to: the SFU's media port.
    public var mediaPorts: Set<UInt16>
    /// Loopback peers are allowed (`--turn-allow-loopback`, for tests): the server's own ports stay refused.
    public var allowLoopback: Bool
    /// Networks the operator allows although they are in ``denied`` (a LAN deployment).
    public var allowed: [Network]

    public init(ownAddresses: Set<[UInt8]> = [], ownLoopback: Bool = false, mediaPorts: Set<UInt16> = [],
                allowLoopback: Bool = false, allowed: [Network] = []) {
        self.ownAddresses = Set(ownAddresses.compactMap(Self.canonical))
        self.ownLoopback = ownLoopback
        self.mediaPorts = mediaPorts
        self.allowLoopback = allowLoopback
        self.allowed = allowed
    }

    public enum Verdict: Equatable, Sendable, CustomStringConvertible {
        case allow
        /// The server's own address: allowed to create a permission, and each packet's port is checked.
        case own
        case deny(String)

        public var description: String {
            switch self {
            case .allow: "allowed"
            case .own: "the server's own address"
            case .deny(let why): "denied: \(why)"
            }
        }
    }

    /// Special-purpose networks no relay should reach (RFC 6890 and RFC 6156 9.1): this host, private and
    /// shared address space, link-local (169.254.169.254 is the cloud metadata service), benchmarking,
    /// multicast, reserved and broadcast; IPv6 unspecified, loopback, unique-local, link-local, site-local and
    /// multicast.
    public static let denied: [(Network, String)] = [
        ("0.0.0.0/8", "this network"), ("127.0.0.0/8", "loopback"), ("10.0.0.0/8", "private"),
        ("172.16.0.0/12", "private"), ("192.168.0.0/16", "private"), ("100.64.0.0/10", "shared address space (CGNAT)"),
        ("169.254.0.0/16", "link-local"), ("192.0.0.0/24", "IETF protocol assignments"), ("198.18.0.0/15", "benchmarking"),
        ("224.0.0.0/4", "multicast"), ("240.0.0.0/4", "reserved or broadcast"),
        ("::/128", "unspecified"), ("::1/128", "loopback"), ("fc00::/7", "unique local"), ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"), ("ff00::/8", "multicast"),
    ].map { (Network($0.0)!, $0.1) }

    static let teredo = Network("2001::/32")!
    static let nat64 = Network("64:ff9b::/96")!
    static let localNAT64 = Network("64:ff9b:1::/48")!
    static let sixToFour = Network("2002::/16")!

    /// The address as the relay would reach it: IPv4 inside IPv6 unwrapped; nil for Teredo and for bytes that are
    /// no address.
    public static func canonical(_ ip: [UInt8]) -> [UInt8]? {
        if ip.count == 4 { return ip }
        guard ip.count == 16 else { return nil }
        let zeros10 = ip[0..<10].allSatisfy { $0 == 0 }
        // ::ffff:a.b.c.d (mapped, RFC 4291 2.5.5.2)
        if zeros10 && ip[10] == 0xFF && ip[11] == 0xFF { return Array(ip[12..<16]) }
        // ::a.b.c.d (compatible, deprecated), but :: and ::1 stay IPv6 (each is denied as itself)
        if zeros10 && ip[10] == 0 && ip[11] == 0 {
            return ip[12..<15].allSatisfy({ $0 == 0 }) && ip[15] <= 1 ? ip : Array(ip[12..<16])
        }
        // ::ffff:0:a.b.c.d (SIIT, RFC 2765)
        if ip[0..<8].allSatisfy({ $0 == 0 }) && ip[8] == 0xFF && ip[9] == 0xFF && ip[10] == 0 && ip[11] == 0 {
            return Array(ip[12..<16])
        }
        // NAT64 well-known prefix (RFC 6052), and the local-use prefix (RFC 8215) in its common /96 layout
        if nat64.contains(ip) { return Array(ip[12..<16]) }
        if localNAT64.contains(ip) {
            // Another prefix length would put the IPv4 address elsewhere: unknown, so refused.
            guard ip[6..<12].allSatisfy({ $0 == 0 }) else { return nil }
            return Array(ip[12..<16])
        }
        // 6to4 (RFC 3056): 2002:AABB:CCDD::/48
        if sixToFour.contains(ip) { return Array(ip[2..<6]) }
        if teredo.contains(ip) { return nil }
        return ip
    }

    static func isLoopback(_ ip: [UInt8]) -> Bool {
        ip.count == 4 ? ip[0] == 127 : ip == [UInt8](repeating: 0, count: 15) + [1]
    }

    func isOwn(_ ip: [UInt8]) -> Bool { ownAddresses.contains(ip) || (ownLoopback && Self.isLoopback(ip)) }

    /// For CreatePermission and ChannelBind (an address without a port): may a permission be installed?
    public func check(ip raw: [UInt8]) -> Verdict {
        guard let ip = Self.canonical(raw) else {
            return .deny(raw.count == 16 && Self.teredo.contains(raw) ? "Teredo" : "not an address")
        }
        if isOwn(ip) { return .own }
        if allowed.contains(where: { $0.contains(ip) }) { return .allow }
        if allowLoopback && Self.isLoopback(ip) { return .allow }
        if let (_, why) = Self.denied.first(where: { $0.0.contains(ip) }) { return .deny(why) }
        return .allow
    }

    /// For each Send indication and ChannelData packet: may it go to `peer`? On the server's own addresses only
    /// the media ports and live relays (`isRelay`) are reachable.
    public func check(peer: Address, isRelay: (Address) -> Bool) -> Verdict {
        switch check(ip: peer.ip) {
        case .own:
            let canonical = Address(ip: Self.canonical(peer.ip) ?? peer.ip, port: peer.port)
            if mediaPorts.contains(peer.port) || isRelay(canonical) { return .allow }
            return .deny("a port of the server's own that is neither the media port nor a relay")
        case let other:
            return other
        }
    }

    /// An IPv4 or IPv6 network in CIDR notation.
    public struct Network: Sendable, Hashable, CustomStringConvertible {
        public let address: [UInt8]
        public let prefixLength: Int

        /// "10.0.0.0/8", "fe80::/10"; a bare address is a /32 or /128. Nil when it does not parse.
        public init?(_ text: String) {
            let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
            guard let ip = IPAddressText.parse(parts[0]) else { return nil }
            let bits = ip.count * 8
            let length = parts.count == 2 ? Int(parts[1]) : bits
            guard let length, (0...bits).contains(length) else { return nil }
            (address, prefixLength) = (ip, length)
        }

        public func contains(_ ip: [UInt8]) -> Bool {
            guard ip.count == address.count else { return false }
            var left = prefixLength
            for i in 0..<ip.count where left > 0 {
                let mask: UInt8 = left >= 8 ? 0xFF : ~(0xFF >> UInt8(left))
                if ip[i] & mask != address[i] & mask { return false }
                left -= 8
            }
            return true
        }

        public var description: String { "\(IPAddressText.format(address))/\(prefixLength)" }
    }
}

/// IPv4 and IPv6 addresses as text, both ways, without sockets (inet_pton's rules: dotted quads of four decimal
/// numbers, IPv6 groups with one `::` and an optional dotted IPv4 tail).
public enum IPAddressText {
    public static func parse(_ text: String) -> [UInt8]? {
        var s = Substring(text)
        if s.hasPrefix("["), s.hasSuffix("]") { s = s.dropFirst().dropLast() }
        return s.contains(":") ? parseIPv6(s) : parseIPv4(s)
    }

    static func parseIPv4(_ s: Substring) -> [UInt8]? {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for p in parts {
            guard (1...3).contains(p.count), p.allSatisfy(\.isASCII), let v = UInt8(p) else { return nil }
            out.append(v)
        }
        return out
    }

    static func parseIPv6(_ s: Substring) -> [UInt8]? {
        let halves = s.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String) -> [UInt8]? {
            if part.isEmpty { return [] }
            var out: [UInt8] = []
            let items = part.split(separator: ":", omittingEmptySubsequences: false)
            for (i, g) in items.enumerated() {
                if i == items.count - 1, g.contains(".") {
                    guard let v4 = parseIPv4(g) else { return nil }
                    out += v4
                } else {
                    guard (1...4).contains(g.count), let v = UInt16(g, radix: 16) else { return nil }
                    out += [UInt8(v >> 8), UInt8(v & 0xFF)]
                }
            }
            return out
        }
        guard let head = groups(halves[0]) else { return nil }
        if halves.count == 1 { return head.count == 16 ? head : nil }
        guard let tail = groups(halves[1]), head.count + tail.count <= 14 else { return nil }
        return head + [UInt8](repeating: 0, count: 16 - head.count - tail.count) + tail
    }

    public static func format(_ ip: [UInt8]) -> String {
        if ip.count == 4 { return ip.map(String.init).joined(separator: ".") }
        guard ip.count == 16 else { return "?" }
        let groups = stride(from: 0, to: 16, by: 2).map { UInt16(ip[$0]) << 8 | UInt16(ip[$0 + 1]) }
        // The longest run of two or more zero groups becomes "::" (RFC 5952 4.2).
        var best = (start: -1, length: 0), i = 0
        while i < 8 {
            guard groups[i] == 0 else { i += 1; continue }
            var j = i
            while j < 8 && groups[j] == 0 { j += 1 }
            if j - i > best.length && j - i >= 2 { best = (i, j - i) }
            i = j
        }
        let hex = groups.map { String($0, radix: 16) }
        guard best.start >= 0 else { return hex.joined(separator: ":") }
        return hex[..<best.start].joined(separator: ":") + "::" + hex[(best.start + best.length)...].joined(separator: ":")
    }
}
