import Foundation
import Hummingbird
import ICE

/// `GET /api/v1/ice-servers`: the STUN and TURN URLs a page should give its RTCPeerConnection, with TURN
/// credentials minted for this session (they reach the SFU's media port only, so handing them to anyone who asks
/// makes no open relay). The host is the one the page used to reach this server. Fetched before the offer, so a
/// client behind a firewall that blocks UDP reaches the media port through TURN over TCP.
struct ICEServerRoutes: Sendable {
    /// The STUN/TURN listener's ports once bound.
    let ports: @Sendable () -> (udp: Int, tcp: Int)?
    /// Session credentials, nil when TURN is off.
    let mint: @Sendable () -> (username: String, password: String)?
    let ttl: Int

    struct ICEServer: Codable, Equatable {
        var urls: [String]
        var username: String?
        var credential: String?
    }

    struct Answer: ResponseEncodable {
        var iceServers: [ICEServer]
        /// Seconds the TURN credentials stay valid.
        var ttl: Int?
    }

    func add(to router: Hummingbird.Router<HTTPContext>) {
        router.get("/api/v1/ice-servers") { request, _ -> Answer in
            guard let ports = ports(), let authority = request.head.authority, let host = HTTPRoutes.host(ofAuthority: authority) else {
                return Answer(iceServers: [], ttl: nil)
            }
            var servers = [ICEServer(urls: ["stun:\(host):\(ports.udp)"])]
            if let (username, password) = mint() {
                servers.append(ICEServer(urls: ["turn:\(host):\(ports.udp)?transport=udp", "turn:\(host):\(ports.tcp)?transport=tcp"],
                                         username: username, credential: password))
                return Answer(iceServers: servers, ttl: ttl)
            }
            return Answer(iceServers: servers, ttl: nil)
        }
    }
}
