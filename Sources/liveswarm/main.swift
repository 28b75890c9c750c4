import ArgumentParser
import Foundation
import ICE
import Logging
import Server
import Signaling

@main
struct LiveSwarmCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "liveswarm",
        abstract: "Live video delivery server: RTMP ingest; RTMP, HTTP-FLV and HLS (with low-latency CMAF) playback; WebRTC and meeting rooms.",
        subcommands: [Serve.self, Token.self],
        defaultSubcommand: Serve.self)

    /// Swift's runtime leaves `CommandLine.arguments` empty when some libraries are preloaded (LD_PRELOAD of
    /// libfaketime, which the clock-step test uses): the server then started on every default and said nothing.
    /// The arguments are read from /proc/self/cmdline when that happens.
    static func main() async {
        await main(arguments())
    }

    static func arguments() -> [String] {
        if !CommandLine.arguments.isEmpty { return Array(CommandLine.arguments.dropFirst()) }
        guard let raw = FileManager.default.contents(atPath: "/proc/self/cmdline") else { return [] }
        // NUL after each argument, the program's first.
        return raw.split(separator: 0, omittingEmptySubsequences: false).dropLast().dropFirst().map { String(decoding: $0, as: UTF8.self) }
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run every service in one process. Needs no config file.")

    @Option(help: "YAML config file (see docs/CONFIG.md). Flags override it.")
    var config: String?

    @Option(help: "Address to listen on.")
    var listen: String?

    @Option(help: "HTTP port: HTTP-FLV, API, metrics (default 8080).")
    var httpPort: Int?

    @Option(help: "RTMP port (default 1935).")
    var rtmpPort: Int?

    @Option(help: "STUN port, UDP and TCP (default 3478).")
    var stunPort: Int?

    @Option(help: "WebRTC media port, UDP and TCP (ICE-TCP) (default 8000).")
    var rtcPort: Int?

    @Option(name: .customLong("host"),
            help: "Address advertised in ICE candidates. Repeatable. Default: the listen address, or this machine's addresses.")
    var hosts: [String] = []

    @Option(name: .customLong("publish-key"),
            help: "Require this key to publish (rtmp://HOST/live/STREAM?key=KEY). Repeatable. 'app/stream=KEY' limits a key to one stream.")
    var publishKeys: [String] = []

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String?

    @Option(help: "Meeting rooms need a token signed with this secret (liveswarm token). Default: rooms are open.")
    var roomSecret: String?

    @Option(help: "Bearer token for the operator API routes that change state (removing a room participant). Default: those routes are refused.")
    var apiToken: String?

    @Option(help: "Folder of the web demo pages served at / (default: web-demo of the checkout).")
    var webRoot: String?

    @Option(name: .customLong("turn-user"), help: "A TURN user, NAME:PASSWORD (long-term credentials, for relaying anywhere the peer policy allows). Repeatable.")
    var turnUsers: [String] = []

    @Option(name: .customLong("turn-secret"), help: "A TURN REST secret (coturn's static-auth-secret): usernames EXPIRY:USER, passwords base64(HMAC-SHA1). Repeatable, for rotation; the first mints.")
    var turnSecrets: [String] = []

    @Option(help: "TURN realm (default liveswarm).")
    var turnRealm: String?

    @Option(help: "TURN relay ports, MIN-MAX (default 61000-65000, above Linux's ephemeral range).")
    var relayPorts: String?

    @Option(help: "The public IP relays are advertised at when the server is behind a NAT.")
    var turnExternalIP: String?

    @Option(help: "The local IPv4 address TURN relays bind to (default: the listen address, or this machine's first when that is a wildcard).")
    var turnRelayIP: String?

    @Option(name: .customLong("turn-relay-ipv6"), help: "The local IPv6 address for IPv6 relays (REQUESTED-ADDRESS-FAMILY, RFC 6156); without it they are refused (440).")
    var turnRelayIPv6: String?

    @Option(help: "TURN over TLS (turns:) on this TCP port, with --turn-tls-cert and --turn-tls-key. Chromium refuses TURN on ports below 1024 other than 53, 80 and 443.")
    var turnTLSPort: Int?

    @Option(help: "The certificate chain (PEM, leaf first) for TURN over TLS: valid for the host clients use, an IP SAN for an address.")
    var turnTLSCert: String?

    @Option(help: "The private key (PEM) for TURN over TLS.")
    var turnTLSKey: String?

    @Flag(name: .customLong("turn-for-p2p"), help: "Hand P2P viewers TURN too, with general credentials (any peer the policy allows, for 24 h; anyone who can read a chunk list gets them). Off by default: a relay carries the bytes P2P saves.")
    var turnForP2P = false

    @Option(name: .customLong("turn-allowed-peers"), help: "A network TURN may relay to although it is special-purpose (a LAN deployment), CIDR. Repeatable.")
    var turnAllowedPeers: [String] = []

    @Flag(help: "Let TURN relay to loopback peers (tests only; the server's own ports stay refused).")
    var turnAllowLoopback = false

    @Flag(help: "No TURN: the STUN port answers Binding only. (TURN is on by default: the credentials the server hands out for sessions reach only its media port.)")
    var noTurn = false

    @Flag(help: "No per-address rate limits on the HTTP API, WHIP/WHEP and WebSocket upgrades (benchmarks and load tests that open many sessions from one address).")
    var noRateLimits = false

    func run() async throws {
        var configuration = ServerConfiguration()
        var level = Logger.Level.info
        if let config {
            let file = try ConfigFile.load(path: config)
            configuration = try file.apply(to: configuration)
            if let l = file.logLevel {
                guard let parsed = Logger.Level(rawValue: l) else { throw ValidationError("log_level '\(l)' is not a level") }
                level = parsed
            }
        }
        if let listen {
            configuration.listenHost = listen
            configuration.rtmp.host = listen
            configuration.stun.host = listen
            configuration.rtc.host = listen
        }
        if let httpPort {
            guard (0...65535).contains(httpPort) else { throw ValidationError("--http-port must be 0-65535") }
            configuration.httpPort = httpPort
        }
        if let rtmpPort {
            guard (0...65535).contains(rtmpPort) else { throw ValidationError("--rtmp-port must be 0-65535") }
            configuration.rtmp.port = rtmpPort
        }
        if let stunPort {
            guard (0...65535).contains(stunPort) else { throw ValidationError("--stun-port must be 0-65535") }
            configuration.stun.port = stunPort
        }
        if let rtcPort {
            guard (0...65535).contains(rtcPort) else { throw ValidationError("--rtc-port must be 0-65535") }
            configuration.rtc.port = rtcPort
        }
        if !hosts.isEmpty { configuration.rtc.advertisedHosts = hosts }
        for k in publishKeys {
            if let eq = k.firstIndex(of: "="), k[..<eq].contains("/") {
                configuration.rtmp.authentication.streamKeys[String(k[..<eq])] = String(k[k.index(after: eq)...])
            } else {
                configuration.rtmp.authentication.keys.insert(k)
            }
        }
        if let roomSecret {
            guard !roomSecret.isEmpty else { throw ValidationError("--room-secret must not be empty") }
            configuration.rooms.secret = roomSecret
        }
        if let apiToken {
            guard !apiToken.isEmpty else { throw ValidationError("--api-token must not be empty") }
            configuration.apiToken = apiToken
        }
        for u in turnUsers {
            guard let user = TURNConfiguration.user(u) else { throw ValidationError("--turn-user takes NAME:PASSWORD") }
            configuration.stun.turn.users[user.name] = user.password
        }
        for secret in turnSecrets {
            guard !secret.isEmpty else { throw ValidationError("--turn-secret must not be empty") }
            configuration.stun.turn.secrets.append(secret)
        }
        if let turnRealm {
            guard !turnRealm.isEmpty else { throw ValidationError("--turn-realm must not be empty") }
            configuration.stun.turn.realm = turnRealm
        }
        if let relayPorts {
            guard let range = TURNConfiguration.portRange(relayPorts) else { throw ValidationError("--relay-ports takes MIN-MAX within 1024-65535") }
            configuration.stun.turn.relayPorts = range
        }
        if let turnExternalIP {
            guard IPAddressText.parse(turnExternalIP) != nil else { throw ValidationError("--turn-external-ip must be an IP address") }
            configuration.stun.turn.externalIP = turnExternalIP
        }
        switch (turnTLSPort, turnTLSCert, turnTLSKey) {
        case (nil, nil, nil): break
        case (let port?, let cert?, let key?):
            guard (0...65535).contains(port) else { throw ValidationError("--turn-tls-port must be 0-65535") }
            configuration.stun.turn.tls = TURNConfiguration.TLS(port: port, certificate: cert, key: key)
        default: throw ValidationError("--turn-tls-port, --turn-tls-cert and --turn-tls-key go together")
        }
        if let turnRelayIP {
            guard IPAddressText.parse(turnRelayIP)?.count == 4 else { throw ValidationError("--turn-relay-ip must be an IPv4 address") }
            configuration.stun.turn.relayIP = turnRelayIP
        }
        if let turnRelayIPv6 {
            guard IPAddressText.parse(turnRelayIPv6)?.count == 16 else { throw ValidationError("--turn-relay-ipv6 must be an IPv6 address") }
            configuration.stun.turn.relayIPv6 = turnRelayIPv6
        }
        for network in turnAllowedPeers {
            guard PeerPolicy.Network(network) != nil else { throw ValidationError("--turn-allowed-peers takes a CIDR network, like 10.20.0.0/16") }
            configuration.stun.turn.allowedPeers.append(network)
        }
        if turnAllowLoopback { configuration.stun.turn.allowLoopback = true }
        if turnForP2P { configuration.stun.turn.forP2P = true }
        if noTurn { configuration.stun.turn.enabled = false }
        if noRateLimits { configuration.httpRateLimits = .off }
        if let webRoot {
            guard FileManager.default.fileExists(atPath: webRoot) else { throw ValidationError("--web-root \(webRoot) does not exist") }
            configuration.webRoot = webRoot
        }
        if let logLevel {
            guard let parsed = Logger.Level(rawValue: logLevel) else { throw ValidationError("--log-level '\(logLevel)' is not a level") }
            level = parsed
        }
        let chosenLevel = level
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardOutput(label: label)
            handler.logLevel = chosenLevel
            return handler
        }
        let server = LiveSwarm(configuration: configuration, logger: Logger(label: "liveswarm"))
        try await server.run { ports in
            Logger(label: "liveswarm").notice("ready", metadata: [
                "rtmp": "rtmp://127.0.0.1:\(ports.rtmp)/live/STREAM",
                "flv": "http://127.0.0.1:\(ports.http)/live/STREAM.flv",
                "hls": "http://127.0.0.1:\(ports.http)/live/STREAM.m3u8",
                "ll-hls": "http://127.0.0.1:\(ports.http)/live/STREAM/index.m3u8",
                "player": "http://127.0.0.1:\(ports.http)/live-http/?stream=live/STREAM",
                "api": "http://127.0.0.1:\(ports.http)/api/v1/streams",
                "stun": "stun:127.0.0.1:\(ports.stunUDP) (udp), \(ports.stunTCP) (tcp)",
                "media": "udp \(ports.rtcUDP), tcp \(ports.rtcTCP.map(String.init) ?? "off") (ICE-lite)",
                "net-check": "http://127.0.0.1:\(ports.http)/net-check/",
                "meeting": "http://127.0.0.1:\(ports.http)/meeting/?room=ROOM&name=NAME",
            ])
        }
    }
}

/// Mints a room token, as LiveKit's `lk token` does: an HS256 JWT for one room and identity.
struct Token: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a token that admits one participant to one meeting room (docs/ROOMS.md, Tokens).")

    @Option(help: "The room it admits to.")
    var room: String

    @Option(help: "The participant's identity (the display name defaults to it).")
    var identity: String

    @Option(help: "How long it is valid: 90s, 30m, 1h, 7d.")
    var ttl: String = "1h"

    @Flag(help: "The holder may join and receive, but not publish.")
    var noPublish = false

    @Option(help: "The server's room secret (--room-secret). Or give --config with rooms.secret.")
    var secret: String?

    @Option(help: "A config file whose rooms.secret to sign with.")
    var config: String?

    func run() throws {
        var key = secret
        if key == nil, let config {
            key = try ConfigFile.load(path: config).apply(to: ServerConfiguration()).rooms.secret
        }
        guard let key, !key.isEmpty else { throw ValidationError("give --secret SECRET (the server's --room-secret) or --config FILE with rooms.secret") }
        guard RoomService.isValidRoomName(room) else { throw ValidationError("--room: 1-64 letters, digits, '-', '_' and '.'") }
        guard !identity.isEmpty else { throw ValidationError("--identity must not be empty") }
        guard let seconds = Self.seconds(ttl) else { throw ValidationError("--ttl: a number and a unit, as 90s, 30m, 1h or 7d") }
        let now = Int(Date().timeIntervalSince1970)
        print(RoomToken(room: room, identity: identity, expires: now + seconds, notBefore: now, canPublish: !noPublish).signed(secret: key))
    }

    static func seconds(_ text: String) -> Int? {
        guard let unit = text.last, let n = Int(text.dropLast()), n > 0 else { return nil }
        switch unit {
        case "s": return n
        case "m": return n * 60
        case "h": return n * 3600
        case "d": return n * 86400
        default: return nil
        }
    }
}
