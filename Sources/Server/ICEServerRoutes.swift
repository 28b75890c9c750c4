import Foundation
import Hummingbird
import ICE
import Signaling

/// `GET /api/v1/ice-servers`: the STUN and TURN URLs a page should give its RTCPeerConnection, with TURN
/// credentials minted for this session (they reach the SFU's media port only, so handing them to anyone who asks
/// makes no open relay). The host is the one the page used to reach this server. Fetched before the offer, so a
/// client behind a firewall that blocks UDP reaches the media port through TURN over TCP.
struct ICEServerRoutes: Sendable {
    let directory: ICEServerDirectory

    struct Answer: ResponseEncodable {
        var iceServers: [ICEServer]
        /// Seconds the TURN credentials stay valid.
        var ttl: Int?
    }

    func add(to router: Hummingbird.Router<HTTPContext>) {
        router.get("/api/v1/ice-servers") { request, _ -> Answer in
            guard let authority = request.head.authority, let host = ICEServerDirectory.host(ofAuthority: authority) else {
                return Answer(iceServers: [], ttl: nil)
            }
            let servers = directory.servers(host: host)
            return Answer(iceServers: servers, ttl: servers.contains { $0.username != nil } ? directory.ttl : nil)
        }
    }
}

/// `GET /api/v1/turn`: the TURN server's allocations and counters. Who holds an allocation (the client's address
/// and the TURN user) is shown only with `Authorization: Bearer API_TOKEN`; without it the route still shows what
/// is relayed, so that a dashboard can chart it.
struct TURNRoutes: Sendable {
    let summaries: @Sendable () -> [Allocations.Summary]?
    let counters: @Sendable () -> Allocations.Counters?
    let operators: OperatorAuthentication

    struct Traffic: Codable { var packets: Int; var bytes: Int }

    struct Relay: Codable {
        /// How the client reached the server: udp, tcp or tls.
        var transport: String
        var relay: String
        var permissions: Int
        var channels: Int
        var secondsLeft: Int
        var toPeers: Traffic
        var fromPeers: Traffic
        /// With the API token only.
        var client: String?
        var user: String?
    }

    struct Answer: ResponseEncodable {
        var enabled: Bool
        var allocations: Int
        /// Since the server started.
        var counters: Allocations.Counters?
        var relays: [Relay]
    }

    func add(to router: Hummingbird.Router<HTTPContext>) {
        router.get("/api/v1/turn") { request, _ -> Answer in
            // With an API token set, only with it (relays' clients and users); without one, a token that is given
            // must be right, and none at all is the public view.
            let detailed = operators.isSet || request.headers[.authorization] != nil
            if detailed { try operators.check(request) }
            guard let all = summaries(), let c = counters() else { return Answer(enabled: false, allocations: 0, counters: nil, relays: []) }
            let relays = all.map {
                Relay(transport: "\($0.transport)", relay: $0.relay, permissions: $0.permissions, channels: $0.channels,
                      secondsLeft: $0.secondsLeft, toPeers: Traffic(packets: $0.toPeers.packets, bytes: $0.toPeers.bytes),
                      fromPeers: Traffic(packets: $0.fromPeers.packets, bytes: $0.fromPeers.bytes),
                      client: detailed ? $0.client : nil, user: detailed ? $0.user : nil)
            }
            return Answer(enabled: true, allocations: relays.count,
                          counters: c, relays: relays)
        }
    }
}
