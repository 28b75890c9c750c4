import Foundation
import ICE
import RTMPBridge
import SFU
import StreamHub
import Yams

/// The optional YAML config file (`liveswarm serve --config FILE`). Every key is optional; what is
/// absent keeps its default, and command-line flags override the file. Unknown keys are an error, so a
/// typo does not silently leave a default in place. See docs/CONFIG.md for the keys.
public struct ConfigFile: Decodable, Sendable {
    public struct HTTP: Decodable, Sendable {
        var port: Int?
        var web_root: String?
        var api_requests_per_second: Double?
        var api_burst: Double?
        var webrtc_requests_per_second: Double?
        var webrtc_burst: Double?
        var websocket_upgrades_per_second: Double?
        var websocket_burst: Double?
        var trusted_proxies: [String]?
    }
    public struct RTMP: Decodable, Sendable {
        var port: Int?
        var max_message_bytes: Int?
        var max_buffered_bytes: Int?
        var handshake_timeout_seconds: Double?
        var publish_idle_timeout_seconds: Double?
        var max_connections: Int?
    }
    public struct Hub: Decodable, Sendable {
        var gop_cache_max_bytes: Int?
        var viewer_max_queue_bytes: Int?
        var viewer_max_wait_seconds: Double?
        var viewer_send_buffer_bytes: Int?
        var republish_grace_seconds: Double?
    }
    public struct HLS: Decodable, Sendable {
        var target_duration_seconds: Int?
        var minimum_segment_seconds: Double?
        var part_target_seconds: Double?
        var window_segments: Int?
        var retained_after_window: Int?
    }
    public struct STUN: Decodable, Sendable { var port: Int? }
    public struct RTC: Decodable, Sendable {
        var port: Int?
        var host: [String]?
        var tcp: Bool?
        var gso: Bool?
        var consent_timeout_seconds: Double?
        var certificate_file: String?
        var key_file: String?
        var catch_up_speed: Double?
        var opus_kbps: Int?
        var whip_to_hub: Bool?
        var aac_kbps: Int?
    }
    public struct Rooms: Decodable, Sendable {
        var max_rooms: Int?
        var max_participants: Int?
        var max_tracks_per_participant: Int?
        var max_message_bytes: Int?
        var max_messages_per_second: Int?
        var video_codec: String?
        var secret: String?
        var grace: Double?
        var reload_window: Double?
        var broadcast: [String]?
    }
    public struct TURN: Decodable, Sendable {
        var enabled: Bool?
        var realm: String?
        /// NAME:PASSWORD each.
        var users: [String]?
        var secrets: [String]?
        var relay_ports: String?
        var external_ip: String?
        var relay_ip: String?
        var relay_ipv6: String?
        var allowed_peers: [String]?
        var allocations_per_user: Int?
        var allocations_per_source: Int?
        var max_allocations: Int?
        var max_mbps_per_allocation: Double?
        var default_lifetime: Double?
        var max_lifetime: Double?
        var tls_port: Int?
        var tls_certificate: String?
        var tls_key: String?
        var p2p: Bool?
    }
    public struct Push: Decodable, Sendable {
        var stream: String
        var url: String
    }

    public struct Auth: Decodable, Sendable {
        var publish_keys: [String]?
        var stream_keys: [String: String]?
        var api_token: String?
    }

    var listen: String?
    var http: HTTP?
    var rtmp: RTMP?
    var hub: Hub?
    var hls: HLS?
    var stun: STUN?
    var rtc: RTC?
    var auth: Auth?
    var rooms: Rooms?
    var turn: TURN?
    var pushes: [Push]?
    var log_level: String?

    static let knownKeys: [String: Set<String>] = [
        "": ["listen", "http", "rtmp", "hub", "hls", "stun", "rtc", "auth", "rooms", "turn", "pushes", "log_level"],
        "http": ["port", "web_root", "api_requests_per_second", "api_burst", "webrtc_requests_per_second", "webrtc_burst",
                 "websocket_upgrades_per_second", "websocket_burst", "trusted_proxies"],
        "rtmp": ["port", "max_message_bytes", "max_buffered_bytes", "handshake_timeout_seconds", "publish_idle_timeout_seconds",
                 "max_connections"],
        "hub": ["gop_cache_max_bytes", "viewer_max_queue_bytes", "viewer_max_wait_seconds", "viewer_send_buffer_bytes",
                "republish_grace_seconds"],
        "hls": ["target_duration_seconds", "minimum_segment_seconds", "part_target_seconds", "window_segments",
                "retained_after_window"],
        "stun": ["port"],
        "rtc": ["port", "host", "tcp", "gso", "consent_timeout_seconds", "certificate_file", "key_file", "catch_up_speed", "opus_kbps",
                "whip_to_hub", "aac_kbps"],
        "auth": ["publish_keys", "stream_keys", "api_token"],
        "rooms": ["max_rooms", "max_participants", "max_tracks_per_participant", "max_message_bytes", "max_messages_per_second",
                  "video_codec", "secret", "grace", "reload_window", "broadcast"],
        "turn": ["enabled", "realm", "users", "secrets", "relay_ports", "external_ip", "relay_ip", "relay_ipv6", "allowed_peers", "allocations_per_user",
                 "allocations_per_source", "max_allocations", "max_mbps_per_allocation", "default_lifetime", "max_lifetime", "tls_port", "tls_certificate", "tls_key", "p2p"],
    ]

    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    public static func load(path: String) throws -> ConfigFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Invalid(description: "cannot read config file \(path)")
        }
        return try parse(String(decoding: data, as: UTF8.self), name: path)
    }

    /// Whether every mapping in `node` has scalar keys (Yams can only build dictionaries of those).
    static func keysAreScalars(_ node: Node) -> Bool {
        switch node {
        case .scalar, .alias: true
        case .sequence(let items): items.allSatisfy(keysAreScalars)
        case .mapping(let pairs): pairs.allSatisfy { key, value in key.scalar != nil && keysAreScalars(value) }
        }
    }

    public static func parse(_ text: String, name: String = "config") throws -> ConfigFile {
        let node: Any?
        do {
            // A key that is a list or a mapping (YAML's "? " complex keys) makes Yams trap when it builds a
            // dictionary: refused first, from the parsed tree.
            if let tree = try Yams.compose(yaml: text), !Self.keysAreScalars(tree) {
                throw Invalid(description: "\(name): every key must be a plain name (a list or a mapping was used as a key)")
            }
            node = try Yams.load(yaml: text)
        } catch let invalid as Invalid {
            throw invalid
        } catch {
            throw Invalid(description: "\(name): not valid YAML: \(error)")
        }
        if node == nil { return try YAMLDecoder().decode(ConfigFile.self, from: "{}") }
        guard let top = node as? [String: Any] else { throw Invalid(description: "\(name): the top level must be a mapping") }
        for (key, value) in top {
            guard knownKeys[""]!.contains(key) else { throw Invalid(description: "\(name): unknown key '\(key)'") }
            if let section = knownKeys[key], let map = value as? [String: Any] {
                for sub in map.keys where !section.contains(sub) {
                    throw Invalid(description: "\(name): unknown key '\(key).\(sub)'")
                }
            }
            if key == "pushes" {
                guard let list = value as? [Any] else { throw Invalid(description: "\(name): pushes must be a list of {stream, url}") }
                for case let entry as [String: Any] in list {
                    for sub in entry.keys where !["stream", "url"].contains(sub) {
                        throw Invalid(description: "\(name): unknown key 'pushes.\(sub)'")
                    }
                }
            }
        }
        do { return try YAMLDecoder().decode(ConfigFile.self, from: text) } catch {
            throw Invalid(description: "\(name): \(error)")
        }
    }

    public var logLevel: String? { log_level }

    /// Applies the file's settings over `base`.
    public func apply(to base: ServerConfiguration) throws -> ServerConfiguration {
        var c = base
        if let v = listen { c.listenHost = v; c.rtmp.host = v; c.stun.host = v; c.rtc.host = v }
        if let v = stun?.port { c.stun.port = try Self.port(v, "stun.port") }
        if let r = rtc {
            if let v = r.port { c.rtc.port = try Self.port(v, "rtc.port") }
            if let v = r.host { c.rtc.advertisedHosts = v }
            if let v = r.tcp { c.rtc.tcp = v }
            if let v = r.gso { c.rtc.segmentation = v }
            if let v = r.consent_timeout_seconds { c.rtc.agent.consentTimeout = try Self.seconds(v, "rtc.consent_timeout_seconds") }
            switch (r.certificate_file, r.key_file) {
            case (let certificate?, let key?): c.dtlsCertificate = DTLSCertificateFiles(certificate: certificate, key: key)
            case (nil, nil): break
            default: throw Invalid(description: "rtc.certificate_file and rtc.key_file go together")
            }
            if let v = r.catch_up_speed {
                guard v >= 1, v <= 16 else { throw Invalid(description: "rtc.catch_up_speed must be between 1 and 16, got \(v)") }
                c.webRTC.catchUpSpeed = v
            }
            if let v = r.whip_to_hub { c.webRTC.whipToHub = v }
            if let v = r.aac_kbps {
                guard v >= 32, v <= 320 else { throw Invalid(description: "rtc.aac_kbps must be between 32 and 320, got \(v)") }
                c.webRTC.aacBitrate = v * 1000
            }
            if let v = r.opus_kbps {
                // libopus takes 6-510 kbit/s; under 16, stereo music falls apart.
                guard v >= 16, v <= 510 else { throw Invalid(description: "rtc.opus_kbps must be between 16 and 510, got \(v)") }
                c.webRTC.opusBitrate = v * 1000
            }
        }
        if let v = http?.port { c.httpPort = try Self.port(v, "http.port") }
        if let v = http?.web_root { c.webRoot = v }
        if let h = http {
            func rate(_ perSecond: Double?, _ perSecondKey: String, _ burst: Double?, _ burstKey: String,
                      into limit: inout RateLimit) throws {
                if let v = perSecond {
                    guard v >= 0, v.isFinite else { throw Invalid(description: "http.\(perSecondKey) must be 0 (off) or more, got \(v)") }
                    limit.perSecond = v
                }
                if let v = burst {
                    guard v >= 1, v.isFinite else { throw Invalid(description: "http.\(burstKey) must be 1 or more, got \(v)") }
                    limit.burst = v
                }
            }
            try rate(h.api_requests_per_second, "api_requests_per_second", h.api_burst, "api_burst", into: &c.httpRateLimits.api)
            try rate(h.webrtc_requests_per_second, "webrtc_requests_per_second", h.webrtc_burst, "webrtc_burst",
                     into: &c.httpRateLimits.webrtc)
            try rate(h.websocket_upgrades_per_second, "websocket_upgrades_per_second", h.websocket_burst, "websocket_burst",
                     into: &c.httpRateLimits.websocket)
            if let v = h.trusted_proxies {
                do { _ = try AddressBlock.blocks(v) } catch { throw Invalid(description: "http.trusted_proxies: \(error)") }
                c.httpRateLimits.trustedProxies = v
            }
        }
        if let r = rtmp {
            if let v = r.port { c.rtmp.port = try Self.port(v, "rtmp.port") }
            if let v = r.max_message_bytes { c.rtmp.maxMessageSize = try Self.positive(v, "rtmp.max_message_bytes") }
            if let v = r.max_buffered_bytes { c.rtmp.maxBufferedBytes = try Self.positive(v, "rtmp.max_buffered_bytes") }
            if let v = r.handshake_timeout_seconds { c.rtmp.handshakeTimeout = try Self.seconds(v, "rtmp.handshake_timeout_seconds") }
            if let v = r.max_connections { c.rtmp.maxConnections = try Self.positive(v, "rtmp.max_connections") }
            if let v = r.publish_idle_timeout_seconds { c.rtmp.publishIdleTimeout = try Self.seconds(v, "rtmp.publish_idle_timeout_seconds") }
        }
        if let h = hub {
            if let v = h.gop_cache_max_bytes { c.hub.gopCacheMaxBytes = try Self.positive(v, "hub.gop_cache_max_bytes") }
            if let v = h.viewer_max_queue_bytes { c.hub.viewerMaxQueueBytes = try Self.positive(v, "hub.viewer_max_queue_bytes") }
            if let v = h.viewer_max_wait_seconds { c.hub.viewerMaxWait = try Self.seconds(v, "hub.viewer_max_wait_seconds") }
            if let v = h.viewer_send_buffer_bytes { c.hub.viewerSendBuffer = try Self.positive(v, "hub.viewer_send_buffer_bytes") }
            if let v = h.republish_grace_seconds { c.hub.republishGrace = try Self.seconds(v, "hub.republish_grace_seconds") }
        }
        if let h = hls {
            if let v = h.target_duration_seconds { c.hls.targetDuration = try Self.positive(v, "hls.target_duration_seconds") }
            if let v = h.minimum_segment_seconds { c.hls.minimumDuration = try Self.seconds(v, "hls.minimum_segment_seconds").milliseconds }
            if let v = h.part_target_seconds { c.hls.partTarget = try Self.seconds(v, "hls.part_target_seconds").milliseconds }
            if let v = h.window_segments { c.hls.windowSegments = try Self.positive(v, "hls.window_segments") }
            if let v = h.retained_after_window {
                guard v >= 0 else { throw Invalid(description: "hls.retained_after_window must be 0 or more, got \(v)") }
                c.hls.retainedAfterWindow = v
            }
            guard c.hls.minimumDuration < Int64(c.hls.targetDuration) * 1000, c.hls.partTarget <= c.hls.minimumDuration else {
                throw Invalid(description: "hls: need part_target_seconds <= minimum_segment_seconds < target_duration_seconds")
            }
        }
        if let a = auth {
            c.rtmp.authentication.keys.formUnion(a.publish_keys ?? [])
            for (k, v) in a.stream_keys ?? [:] { c.rtmp.authentication.streamKeys[k] = v }
            if let v = a.api_token {
                guard !v.isEmpty else { throw Invalid(description: "auth.api_token must not be empty") }
                c.apiToken = v
            }
        }
        if let r = rooms {
            if let v = r.max_rooms { c.rooms.maxRooms = try Self.positive(v, "rooms.max_rooms") }
            if let v = r.max_participants { c.rooms.maxParticipants = try Self.positive(v, "rooms.max_participants") }
            if let v = r.max_tracks_per_participant { c.rooms.maxTracksPerParticipant = try Self.positive(v, "rooms.max_tracks_per_participant") }
            if let v = r.max_message_bytes {
                guard v >= 4096, v <= 4 << 20 else { throw Invalid(description: "rooms.max_message_bytes must be 4096-4194304, got \(v)") }
                c.rooms.maxMessageBytes = v
            }
            if let v = r.max_messages_per_second { c.rooms.maxMessagesPerSecond = try Self.positive(v, "rooms.max_messages_per_second") }
            if let v = r.video_codec {
                guard ["vp8", "h264"].contains(v.lowercased()) else { throw Invalid(description: "rooms.video_codec must be vp8 or h264, got \(v)") }
                c.rooms.videoCodec = v.uppercased()
            }
            if let v = r.secret {
                guard !v.isEmpty else { throw Invalid(description: "rooms.secret must not be empty") }
                c.rooms.secret = v
            }
            if let v = r.grace {
                guard v >= 0, v <= 600 else { throw Invalid(description: "rooms.grace must be 0-600 seconds, got \(v)") }
                c.rooms.grace = v
            }
            if let v = r.reload_window {
                guard v >= 0, v <= 60 else { throw Invalid(description: "rooms.reload_window must be 0-60 seconds, got \(v)") }
                c.rooms.reloadWindow = v
            }
            if let v = r.broadcast {
                for room in v where RoomForwarder.hubKey(room: room, participant: "p") == nil {
                    throw Invalid(description: "rooms.broadcast: \(room) cannot be a stream name (letters, digits, '-', '_' and '.')")
                }
                if !v.isEmpty && c.rooms.videoCodec != "H264" {
                    throw Invalid(description: "rooms.broadcast needs rooms.video_codec: h264 (RTMP, HTTP-FLV and HLS viewers need H.264)")
                }
                c.rooms.broadcast = v
            }
        }
        if let t = turn { try apply(t, to: &c.stun.turn) }
        for (i, p) in (pushes ?? []).enumerated() {
            let parts = p.stream.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2, let key = StreamKey(app: parts[0], stream: parts[1]) else {
                throw Invalid(description: "pushes[\(i)].stream must be APP/STREAM, got \(p.stream)")
            }
            do { _ = try RTMPPushTarget(url: p.url) } catch { throw Invalid(description: "pushes[\(i)].url: \(error)") }
            c.pushes.append(PushEntry(stream: key, url: p.url))
        }
        return c
    }

    func apply(_ t: TURN, to c: inout TURNConfiguration) throws {
        if let v = t.enabled { c.enabled = v }
        if let v = t.p2p { c.forP2P = v }
        if let v = t.realm {
            guard !v.isEmpty else { throw Invalid(description: "turn.realm must not be empty") }
            c.realm = v
        }
        for u in t.users ?? [] {
            guard let user = TURNConfiguration.user(u) else { throw Invalid(description: "turn.users takes NAME:PASSWORD entries") }
            c.users[user.name] = user.password
        }
        for v in t.secrets ?? [] {
            guard !v.isEmpty else { throw Invalid(description: "turn.secrets must not be empty strings") }
            c.secrets.append(v)
        }
        if let v = t.relay_ports {
            guard let range = TURNConfiguration.portRange(v) else { throw Invalid(description: "turn.relay_ports takes MIN-MAX within 1024-65535, got \(v)") }
            c.relayPorts = range
        }
        if let v = t.external_ip {
            guard IPAddressText.parse(v) != nil else { throw Invalid(description: "turn.external_ip must be an IP address, got \(v)") }
            c.externalIP = v
        }
        if let v = t.relay_ip {
            guard IPAddressText.parse(v)?.count == 4 else { throw Invalid(description: "turn.relay_ip must be an IPv4 address, got \(v)") }
            c.relayIP = v
        }
        if let v = t.relay_ipv6 {
            guard IPAddressText.parse(v)?.count == 16 else { throw Invalid(description: "turn.relay_ipv6 must be an IPv6 address, got \(v)") }
            c.relayIPv6 = v
        }
        for v in t.allowed_peers ?? [] {
            guard PeerPolicy.Network(v) != nil else { throw Invalid(description: "turn.allowed_peers takes CIDR networks, got \(v)") }
            c.allowedPeers.append(v)
        }
        if let v = t.allocations_per_user { c.limits.allocationsPerUser = try Self.positive(v, "turn.allocations_per_user") }
        if let v = t.allocations_per_source { c.limits.allocationsPerSource = try Self.positive(v, "turn.allocations_per_source") }
        if let v = t.max_allocations { c.limits.capacity = try Self.positive(v, "turn.max_allocations") }
        if let v = t.max_mbps_per_allocation {
            guard v >= 1, v <= 10_000 else { throw Invalid(description: "turn.max_mbps_per_allocation must be 1-10000, got \(v)") }
            c.limits.bytesPerSecond = Int(v * 125_000)
        }
        if let v = t.max_lifetime {
            guard v >= 30, v <= 86400 else { throw Invalid(description: "turn.max_lifetime must be 30-86400 seconds, got \(v)") }
            c.limits.maximumLifetime = v
            c.limits.defaultLifetime = min(c.limits.defaultLifetime, v)
        }
        if let v = t.default_lifetime {
            guard v >= 30, v <= c.limits.maximumLifetime else {
                throw Invalid(description: "turn.default_lifetime must be 30-\(Int(c.limits.maximumLifetime)) seconds (turn.max_lifetime), got \(v)")
            }
            c.limits.defaultLifetime = v
        }
        switch (t.tls_port, t.tls_certificate, t.tls_key) {
        case (nil, nil, nil): break
        case (let port?, let certificate?, let key?):
            c.tls = TURNConfiguration.TLS(port: try Self.port(port, "turn.tls_port"), certificate: certificate, key: key)
        default: throw Invalid(description: "turn.tls_port, turn.tls_certificate and turn.tls_key go together")
        }
    }

    static func port(_ v: Int, _ name: String) throws -> Int {
        guard (0...65535).contains(v) else { throw Invalid(description: "\(name) must be 0-65535, got \(v)") }
        return v
    }

    static func positive(_ v: Int, _ name: String) throws -> Int {
        guard v > 0 else { throw Invalid(description: "\(name) must be positive, got \(v)") }
        return v
    }

    static func seconds(_ v: Double, _ name: String) throws -> Duration {
        guard v > 0, v < 86_400 else { throw Invalid(description: "\(name) must be between 0 and 86400 s, got \(v)") }
        return .milliseconds(Int64(v * 1000))
    }
}

extension Duration {
    /// Whole milliseconds.
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}
