/// One `RTCIceServer`, as a client is given it.
public struct ICEServer: Sendable, Equatable, Codable {
    public var urls: [String]
    public var username: String?
    public var credential: String?

    public init(urls: [String], username: String? = nil, credential: String? = nil) {
        (self.urls, self.username, self.credential) = (urls, username, credential)
    }
}

/// The STUN and TURN servers handed out where sessions start, before the offer: `GET /api/v1/ice-servers`, the
/// room `joined` reply and WHIP/WHEP `Link` headers (docs/TURN.md). TURN credentials are minted per session and
/// reach only the SFU's media port, since all three are open to anyone who can reach the HTTP port.
public struct ICEServerDirectory: Sendable {
    /// The STUN/TURN listener's ports once bound (UDP, TCP, and TURN over TLS's when configured).
    let ports: @Sendable () -> (udp: Int, tcp: Int, tls: Int?)?
    /// Session credentials (`general`: for P2P, not limited to the media port); nil when TURN is off.
    let mint: @Sendable (_ general: Bool) -> (username: String, password: String)?
    /// Whether P2P viewers get TURN (`--turn-for-p2p`).
    let forP2P: Bool
    /// Seconds minted credentials stay valid.
    public let ttl: Int

    public init(ttl: Int, forP2P: Bool = false, ports: @escaping @Sendable () -> (udp: Int, tcp: Int, tls: Int?)?,
                mint: @escaping @Sendable (_ general: Bool) -> (username: String, password: String)?) {
        (self.ttl, self.forP2P, self.ports, self.mint) = (ttl, forP2P, ports, mint)
    }

    /// The servers for a client that reached this server at `host` (what a browser behind NAT can reach), with
    /// credentials of its own. Empty before the listener is bound.
    /// `turn: false`: STUN only, nothing minted.
    public func servers(host: some StringProtocol, general: Bool = false, turn: Bool = true) -> [ICEServer] {
        guard let ports = ports() else { return [] }
        var servers = [ICEServer(urls: ["stun:\(host):\(ports.udp)"])]
        if turn, let (username, password) = mint(general) {
            // turns: names the host as the page reached it: the certificate must be valid for it (an IP SAN for an
            // address).
            let tls = ports.tls.map { ["turns:\(host):\($0)?transport=tcp"] } ?? []
            servers.append(ICEServer(urls: ["turn:\(host):\(ports.udp)?transport=udp", "turn:\(host):\(ports.tcp)?transport=tcp"] + tls,
                                     username: username, credential: password))
        }
        return servers
    }

    /// For P2P viewers: STUN only, unless the operator allows TURN for P2P (`--turn-for-p2p`); then TURN too, with
    /// general credentials, since the peers are other browsers.
    public func p2pServers(host: some StringProtocol) -> [ICEServer] {
        servers(host: host, general: true, turn: forP2P)
    }

    /// WHIP/WHEP `Link` header values (RFC 9725 4.4): one per URL, TURN ones with their credentials.
    public func linkHeaders(host: some StringProtocol) -> [String] {
        servers(host: host).flatMap { server in
            server.urls.map { url in
                var link = "<\(url)>; rel=\"ice-server\""
                if let username = server.username, let credential = server.credential {
                    link += "; username=\"\(username)\"; credential=\"\(credential)\"; credential-type=\"password\""
                }
                return link
            }
        }
    }

    /// `example.com:8080` to `example.com`, `[::1]:8080` to `[::1]` (the form URLs take).
    public static func host(ofAuthority authority: String) -> Substring? {
        if authority.hasPrefix("["), let end = authority.firstIndex(of: "]") { return authority[...end] }
        return authority.split(separator: ":").first
    }
}
