import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import STUN

/// The TURN server's sockets around ``Allocations``: it takes what the STUN listeners receive that is not
/// Binding, binds relay sockets in the configured port range, and carries data between relays and clients.
final class TURNEndpoint: Sendable {
    let allocations: Allocations
    let logger: Logger
    let group: any EventLoopGroup
    /// Where relays bind, and the address they are advertised at (the external IP behind a NAT).
    let relayBind: (v4: String?, v6: String?)
    let advertised: (v4: [UInt8]?, v6: [UInt8]?)
    let ports: ClosedRange<Int>
    let epoch = ContinuousClock.now
    /// The UDP listener's writer, to answer UDP clients; TCP clients' connections by address.
    let udpWriter = NIOLockedValueBox<DatagramWriter?>(nil)
    let tcpClients = NIOLockedValueBox<[TURNClient: any Channel]>([:])

    /// Made at start, never shown: it mints the credentials handed out for sessions (``mintSession(ttl:)``), whose
    /// users end in `~sfu` and so reach the SFU's media port only.
    let sessionSecret = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()

    /// Datagrams the kernel refused to send, from the relays (the listener's writer counts its own there too).
    let refused: Counter

    init(configuration: TURNConfiguration, listenHost: String, logger: Logger, group: any EventLoopGroup, refused: Counter) {
        var c = Allocations.Configuration()
        c.credentials = configuration.credentials
        c.credentials.secrets.append(sessionSecret)
        c.limits = configuration.limits
        let wildcard = ["0.0.0.0", "::"].contains(listenHost)
        let v4 = configuration.relayIP ?? (wildcard ? Self.firstLocalAddress(v6: false) : listenHost)
        let v6 = configuration.relayIPv6
        relayBind = (v4, v6)
        let external = configuration.externalIP.flatMap(IPAddressText.parse)
        advertised = (external ?? v4.flatMap(IPAddressText.parse), v6.flatMap(IPAddressText.parse))
        c.families = Set([v4 != nil ? 4 : nil, v6 != nil ? 6 : nil].compactMap { $0 })
        if let external, let local = v4.flatMap(IPAddressText.parse), external != local { c.hairpin = [external: local] }
        var own = Set(([v4, v6, external.map(IPAddressText.format), listenHost] + configuration.serverAddresses).compactMap { $0 }
            .compactMap(IPAddressText.parse))
        // A wildcard listener is reached on every local address, loopback ones included.
        let wildcards = ([listenHost] + configuration.serverAddresses).filter { ["0.0.0.0", "::"].contains($0) }
        if !wildcards.isEmpty { own.formUnion(Self.localAddresses()) }
        let ownLoopback = !wildcards.isEmpty
        c.policy = PeerPolicy(ownAddresses: own, ownLoopback: ownLoopback, allowLoopback: configuration.allowLoopback,
                              allowed: configuration.allowedPeers.compactMap(PeerPolicy.Network.init))
        allocations = Allocations(configuration: c)
        ports = configuration.relayPorts
        self.logger = logger
        self.group = group
        self.refused = refused
    }

    func now() -> Double { (ContinuousClock.now - epoch) / .seconds(1) }

    /// REST credentials for one session, valid `ttl` seconds: for a WHIP, WHEP or room session they reach only the
    /// SFU's media port; `general` ones (P2P viewers, when the operator allows it) reach any peer the policy allows.
    func mintSession(ttl: Double, general: Bool = false) -> (username: String, password: String) {
        let user = (0..<6).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined() + (general ? "" : TURNCredentials.sfuScopeSuffix)
        return TURNCredentials(secrets: [sessionSecret]).mint(user: user, ttl: ttl, now: Date().timeIntervalSince1970)!
    }

    /// The SFU's media port, once bound: peers on the server's own addresses may be relayed to it.
    func allowMediaPort(_ port: Int) { allocations.setMediaPorts([UInt16(port)]) }

    /// A datagram or TCP frame from a client that is TURN's: ChannelData, or a STUN message of a TURN method.
    /// False when it is not TURN's (Binding, or not STUN at all): the STUN responder takes it.
    func handle(_ bytes: [UInt8], from client: TURNClient, reply: @escaping @Sendable ([UInt8]) -> Void) -> Bool {
        guard let first = bytes.first else { return false }
        if ChannelData.isChannelData(firstByte: first) {
            allocations.channelData(bytes, from: client, now: now())
            return true
        }
        guard let m = try? Message(parsing: bytes), m.type.method != .binding else { return false }
        switch m.type.messageClass {
        case .request:
            if m.fingerprintIsValid == false { return true }
            switch allocations.request(m, from: client, now: now(), wall: Date().timeIntervalSince1970) {
            case .reply(let out): reply(out)
            case .drop(let why): logger.debug("TURN request dropped", metadata: ["client": "\(client)", "why": "\(why)"])
            case .allocate(let pending): bind(pending, reply: reply)
            }
        case .indication where m.type.method == .send:
            allocations.send(m, from: client, now: now())
        default:
            break  // responses and other indications: nothing to answer
        }
        return true
    }

    /// Binds the relay (an even port, and the next one reserved, when asked), then answers. On the event loops
    /// only (futures, no tasks), so that an answer never waits for Swift's cooperative threads.
    func bind(_ pending: Allocations.PendingAllocation, reply: @escaping @Sendable ([UInt8]) -> Void) {
        let v6 = pending.family == 6
        guard let host = v6 ? relayBind.v6 : relayBind.v4, let shown = v6 ? advertised.v6 : advertised.v4 else {
            reply(allocations.allocated(pending, relay: nil, reserved: nil, now: now()))
            return
        }
        attempt(host: host, shown: shown, even: pending.evenPort, triesLeft: 20).whenComplete { [self] result in
            let (relay, reserved) = (try? result.get()) ?? (nil, nil)
            if let relay {
                logger.info("TURN allocation", metadata: ["client": "\(pending.client)", "relay": "\(relay.address)",
                                                          "user": "\(pending.user)", "reserved": "\(reserved.map { "\($0.address)" } ?? "none")"])
            } else {
                logger.warning("TURN: no relay port free", metadata: ["ports": "\(ports)", "client": "\(pending.client)"])
            }
            reply(allocations.allocated(pending, relay: relay, reserved: reserved, now: now()))
        }
    }

    struct NoPortFree: Error {}

    /// A random port of the range (even for EVEN-PORT, with the next one too when reserving); a port in use (another
    /// process, a reservation) is skipped for another, up to `triesLeft` times.
    func attempt(host: String, shown: [UInt8], even: Bool?, triesLeft: Int) -> EventLoopFuture<(NIORelaySocket?, NIORelaySocket?)> {
        let loop = group.next()
        guard triesLeft > 0 else { return loop.makeFailedFuture(NoPortFree()) }
        var port = Int.random(in: ports)
        if even != nil { port &= ~1 }
        guard ports.contains(port), even != true || port + 1 <= ports.upperBound else {
            return attempt(host: host, shown: shown, even: even, triesLeft: triesLeft - 1)
        }
        return NIORelaySocket.bind(host: host, port: port, shown: shown, endpoint: self).flatMap { [self] relay in
            guard even == true else { return loop.makeSucceededFuture((relay, nil)) }
            return NIORelaySocket.bind(host: host, port: port + 1, shown: shown, endpoint: self).map { (relay, $0) }
                .flatMapError { [self] _ in
                    relay.close()
                    return attempt(host: host, shown: shown, even: even, triesLeft: triesLeft - 1)
                }
        }.flatMapError { [self] _ in attempt(host: host, shown: shown, even: even, triesLeft: triesLeft - 1) }
    }

    /// Data from a peer on a relay: to its client.
    func fromPeer(_ data: ArraySlice<UInt8>, relay: Address, peer: Address) {
        guard let (client, out) = allocations.fromPeer(data, relay: relay, peer: peer, now: now()) else { return }
        send(out, to: client)
    }

    func send(_ bytes: [UInt8], to client: TURNClient) {
        switch client.transport {
        case .udp:
            guard let writer = udpWriter.withLockedValue({ $0 }), let to = Self.socketAddress(client.address) else { return }
            writer.send([AddressedEnvelope(remoteAddress: to, data: ByteBuffer(bytes: bytes))])
        case .tcp, .tls:
            guard let channel = tcpClients.withLockedValue({ $0[client] }) else { return }
            channel.writeAndFlush(channel.allocator.buffer(bytes: bytes), promise: nil)
        }
    }

    func connected(_ client: TURNClient, _ channel: any Channel) { tcpClients.withLockedValue { $0[client] = channel } }

    /// A TCP client's connection closed: its allocation goes with it (RFC 8656 3.1).
    func disconnected(_ client: TURNClient) {
        tcpClients.withLockedValue { $0[client] = nil }
        allocations.closed(client)
    }

    /// Expiry and metrics, about once a second, until the server stops.
    func runTimers(metrics: TURNMetrics) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            allocations.expire(now: now())
            metrics.record(allocations.snapshot, allocations: allocations.count)
        }
        allocations.closeAll()
    }

    static func socketAddress(_ a: Address) -> SocketAddress? {
        try? SocketAddress(packedIPAddress: ByteBuffer(bytes: a.ip), port: Int(a.port))
    }

    /// This machine's addresses (every interface), canonical bytes.
    static func localAddresses() -> Set<[UInt8]> {
        guard let interfaces = try? System.enumerateDevices() else { return [] }
        return Set(interfaces.compactMap { $0.address.flatMap { PeerAddress($0, transport: .udp)?.stunAddress.ip } })
    }

    static func firstLocalAddress(v6: Bool) -> String? {
        let all = (try? System.enumerateDevices()) ?? []
        return all.compactMap { d -> String? in
            guard let a = d.address, let ip = PeerAddress(a, transport: .udp)?.stunAddress.ip, (ip.count == 16) == v6,
                !PeerPolicy.isLoopback(ip) else { return nil }
            return IPAddressText.format(ip)
        }.first
    }
}

/// A relay socket: one UDP socket per allocation (as coturn does by default), its reads handed to the endpoint.
/// swift-nio's channel reads; a ``DatagramWriter`` sends, so that a datagram to a peer the kernel refuses (a
/// firewall rule's EPERM) is dropped alone instead of closing the relay.
final class NIORelaySocket: RelaySocket, Sendable {
    let address: Address
    let channel: any Channel
    let writer: DatagramWriter
    let handler: RelayHandler

    init(address: Address, channel: any Channel, writer: DatagramWriter, handler: RelayHandler) {
        (self.address, self.channel, self.writer, self.handler) = (address, channel, writer, handler)
    }

    static func bind(host: String, port: Int, shown: [UInt8], endpoint: TURNEndpoint) -> EventLoopFuture<NIORelaySocket> {
        let address = Address(ip: shown, port: UInt16(port))
        let handler = RelayHandler(endpoint: endpoint, relay: address)
        let loop = endpoint.group.next()
        // A port found taken fails here (the caller tries another); on a later failure the channel, or else the
        // descriptor, is closed again (see `withBoundSocket(_:initializing:)`), and the writer's copy with it.
        let fd: CInt, writer: DatagramWriter
        do {
            (fd, writer) = try DatagramWriter.bound(host: host, port: port, listener: false, what: "TURN relay \(address)",
                                                    logger: endpoint.logger, refused: endpoint.refused)
        } catch {
            return loop.makeFailedFuture(error)
        }
        return DatagramBootstrap(group: loop)
            .channelOption(.socketOption(.so_rcvbuf), value: 1 << 20)
            .withBoundSocket(fd) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .map { NIORelaySocket(address: address, channel: $0, writer: writer, handler: handler) }
            .flatMapErrorThrowing { error in
                writer.close()
                throw error
            }
    }

    func send(_ data: ArraySlice<UInt8>, to peer: Address) {
        guard let to = TURNEndpoint.socketAddress(peer) else { return }
        writer.send([AddressedEnvelope(remoteAddress: to, data: ByteBuffer(bytes: data))])
    }

    func deliver(_ data: ArraySlice<UInt8>, from peer: Address) {
        handler.endpoint.fromPeer(data, relay: address, peer: peer)
    }

    /// Closes the socket: the channel's descriptor and the writer's copy (either alone would keep the port bound).
    func close() {
        channel.close(promise: nil)
        writer.close()
    }

    final class RelayHandler: ChannelInboundHandler, Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let endpoint: TURNEndpoint
        let relay: Address

        init(endpoint: TURNEndpoint, relay: Address) { (self.endpoint, self.relay) = (endpoint, relay) }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = unwrapInboundIn(data)
            guard let peer = PeerAddress(envelope.remoteAddress, transport: .udp)?.stunAddress else { return }
            endpoint.fromPeer(Array(envelope.data.readableBytesView)[...], relay: relay, peer: peer)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // ICMP errors of earlier sends (a peer that is gone) surface here; the socket itself is fine.
        }
    }
}
