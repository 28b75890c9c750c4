import Foundation

/// What the TURN server on the STUN port is told (`--turn-*` flags; docs/TURN.md). TURN is on by default: the
/// credentials the server hands out for sessions reach only its media port, so it is no open relay; static users
/// and REST secrets are for general relaying.
public struct TURNConfiguration: Sendable, Equatable {
    /// `--no-turn` turns it off: the STUN port then answers Binding only.
    public var enabled = true
    public var realm = "liveswarm"
    /// Static users, `NAME:PASSWORD` (`--turn-user`).
    public var users: [String: String] = [:]
    /// REST secrets (`--turn-secret`), the first one mints the credentials LiveSwarm hands out.
    public var secrets: [String] = []
    /// Relay ports: above Linux's ephemeral range (32768-60999), so that the kernel's own choices for outgoing
    /// connections do not collide with them; a port in use is skipped.
    public var relayPorts: ClosedRange<Int> = 61000...65000
    /// The public address relays are advertised at when the server is behind a NAT (`--turn-external-ip`).
    public var externalIP: String?
    /// The address relays bind to; nil: the listen address, or the first advertised host when that is a wildcard.
    public var relayIP: String?
    /// The IPv6 relay address (REQUESTED-ADDRESS-FAMILY IPv6, RFC 6156); nil: no IPv6 relays (440).
    public var relayIPv6: String?
    /// The server's other addresses (listen addresses of its other services, hosts advertised in ICE candidates):
    /// peers there are reachable only on the media port. Filled in by the server, not configured.
    public var serverAddresses: [String] = []
    /// Loopback peers (tests only); the server's own ports stay refused.
    public var allowLoopback = false
    /// Networks peers may be in although they are special-purpose (a LAN deployment), CIDR.
    public var allowedPeers: [String] = []
    /// TURN over TLS (`turns:`): its own TCP port, with a certificate chain and key (PEM files).
    public struct TLS: Sendable, Equatable {
        /// 0 picks a free port (tests). Chromium refuses TURN on ports below 1024 other than 53, 80 and 443.
        public var port: Int
        public var certificate: String
        public var key: String

        public init(port: Int, certificate: String, key: String) { (self.port, self.certificate, self.key) = (port, certificate, key) }
    }

    /// Nil: no `turns:` (`--turn-tls-port` with `--turn-tls-cert` and `--turn-tls-key`).
    public var tls: TLS?
    /// P2P viewers get TURN too, with credentials that may relay between browsers (`--turn-for-p2p`). Off by
    /// default: a relay carries the very bytes P2P is meant to keep off the servers.
    public var forP2P = false

    /// Lifetimes and quotas (tests shorten the lifetimes).
    public var limits = TURNLimits()

    public init() {}

    /// A static user, `NAME:PASSWORD` (`--turn-user`, `turn.users` in the config file); nil when it is not one.
    public static func user(_ text: String) -> (name: String, password: String)? {
        guard let colon = text.firstIndex(of: ":"), colon != text.startIndex, text.index(after: colon) != text.endIndex else { return nil }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }

    /// "MIN-MAX" within 1024-65535; nil when it is not.
    public static func portRange(_ text: String) -> ClosedRange<Int>? {
        let parts = text.split(separator: "-").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 2, let low = parts[0], let high = parts[1], 1024 <= low, low <= high, high <= 65535 else { return nil }
        return low...high
    }

    public var credentials: TURNCredentials { TURNCredentials(realm: realm, users: users, secrets: secrets) }
    public var isEnabled: Bool { enabled }
    /// Session credentials last this long: at least the longest session, since Chromium refreshes its
    /// allocations with the credentials it started with.
    public var sessionTTL: Double = 86400
}

/// How long TURN state lives and how much of it a client may hold.
public struct TURNLimits: Sendable, Equatable {
    /// RFC 8656 defaults: 600 s unless asked, at most 3600 s; permissions 300 s; channels 600 s.
    public var defaultLifetime: Double = 600
    public var maximumLifetime: Double = 3600
    public var permissionLifetime: Double = 300
    public var channelLifetime: Double = 600
    /// A reserved port (EVEN-PORT with R) waits this long for the Allocate that claims it (RFC 8656 7.2 says
    /// about 30 s).
    public var reservationLifetime: Double = 30
    /// Allocations per REST user or static user (486 beyond): a P2P viewer with 8 neighbours over UDP, TCP and TLS
    /// URLs makes 30 or more.
    public var allocationsPerUser = 64
    /// Allocations per client IP address (486 beyond): high enough for an office of meeting participants behind
    /// one NAT, low enough that one host cannot take every relay port.
    public var allocationsPerSource = 256
    /// Allocations in all (508 beyond).
    public var capacity = 4000
    /// A TCP or TLS connection without an allocation is closed after this long (checked as often): a client that
    /// connects and sends nothing, or half a message, cannot hold a socket.
    public var idleConnectionSeconds: Double = 30
    /// Bytes a second each allocation may relay each way (one second's worth may come at once); more is dropped and
    /// counted. 20 Mbit/s: a 1080p screen share fits with room to spare; one allocation cannot take the uplink.
    public var bytesPerSecond = 2_500_000

    public init() {}
}
