import FuzzSupport
@testable import ICE
import STUN

/// The TURN server's allocations (RFC 8656) as a state machine: four clients (two UDP from one address, one TCP,
/// one TLS) send Allocate (EVEN-PORT and its reservation token, families, lifetimes, retransmissions), Refresh,
/// CreatePermission, ChannelBind, Send indications and ChannelData, signed as static, REST and session-scoped users
/// or wrongly; peers send data back; relay binds fail, or complete later (after other steps, or after the server began
/// to stop); time passes with and without the sweep; TCP connections close; the server stops.
///
/// Steps are bytes `op arg more` (and `length bytes` for the ops that carry data): `op % 13` is the operation, `op / 13`
/// how the request is signed, `more & 3` the client.
///
/// After every step: the tables agree (each allocation under its client and its relay), every relay socket the harness
/// made is open exactly when an allocation or a reservation holds it (no leak, and no socket used after it closed),
/// channels and their peers map one to one within the channel range, nothing past its lifetime survives a sweep, the
/// quotas hold. Each answer is a response to its request, and a success only to a request signed with a valid key,
/// signed back with it. Data reaches a peer only from the sender's own relay, to a peer it has a permission for that
/// the policy allows (the media port alone for session-scoped users), unchanged; data from a peer reaches only the
/// relay's owner, as ChannelData on the peer's channel or as a Data indication naming the peer.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = UnsafeBufferPointer(start: data, count: size)[...]
    let h = Harness()
    while let op = input.popFirst() {
        let arg = input.popFirst() ?? 0
        let more = input.popFirst() ?? 0
        var body: [UInt8] = []
        if [4, 5, 6, 7].contains(op % 13) {
            let length = Int(input.popFirst() ?? 0)
            body = Array(input.prefix(length))
            input = input.dropFirst(length)
        }
        h.step(op: op, arg: arg, more: more, body: body)
        h.invariants()
    }
    h.allocations.closeAll()
    h.completeParked(reversed: false)
    h.invariants()
    check(h.allocations.table.isEmpty && h.allocations.reservations.isEmpty, "allocations left after the stop")
    check(h.relays.allSatisfy(\.closed), "a relay socket left open after the stop")
    return 0
}

/// A relay socket that records what went through it, and refuses to be used once closed.
final class FakeRelay: RelaySocket, @unchecked Sendable {
    let address: Address
    var sent: [(data: [UInt8], to: Address)] = []
    var delivered: [(data: [UInt8], from: Address)] = []
    var closed = false
    init(_ address: Address) { self.address = address }
    func send(_ data: ArraySlice<UInt8>, to peer: Address) {
        check(!closed, "a send on closed relay \(address)")
        sent.append((Array(data), peer))
    }
    func deliver(_ data: ArraySlice<UInt8>, from peer: Address) {
        check(!closed, "a delivery to closed relay \(address)")
        delivered.append((Array(data), peer))
    }
    func close() { closed = true }
}

final class Harness {
    static let realm = "liveswarm"
    static let server: [UInt8] = [203, 0, 113, 7]
    static let server6: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [7]
    static let mediaPort: UInt16 = 8000
    static let secret = "rest-secret"

    let allocations: Allocations
    let nonces = NonceIssuer(key: Array("fuzz nonce key".utf8))
    let limits: TURNLimits
    let clients = [TURNClient(transport: .udp, address: Address(ip: [198, 51, 100, 9], port: 40000)),
                   TURNClient(transport: .udp, address: Address(ip: [198, 51, 100, 9], port: 40001)),
                   TURNClient(transport: .tcp, address: Address(ip: [198, 51, 100, 9], port: 40002)),
                   TURNClient(transport: .tls, address: Address(ip: [192, 0, 2, 44], port: 40003))]
    var now = 1000.0
    var wall: Double { 1_000_000 + now }
    var relays: [FakeRelay] = []
    var nextPort: UInt16 = 50000
    var transactions = 0
    var lastAllocate: [[UInt8]?] = [nil, nil, nil, nil]
    var lastToken: [UInt8]?
    /// Allocates whose relay is being bound: completed by a later step.
    var parked: [Allocations.PendingAllocation] = []

    init() {
        var c = Allocations.Configuration()
        c.credentials = TURNCredentials(realm: Self.realm, users: ["alice": "secret", "bob": "hunter2"], secrets: [Self.secret])
        c.policy = PeerPolicy(ownAddresses: [Self.server, Self.server6], mediaPorts: [Self.mediaPort])
        c.families = [4, 6]
        c.limits.capacity = 3
        c.limits.allocationsPerUser = 2
        c.limits.allocationsPerSource = 2
        c.limits.bytesPerSecond = 4000
        limits = c.limits
        allocations = Allocations(configuration: c, nonces: nonces)
    }

    /// The peers a step names (`k & 7`): public IPv4 (two ports of one address), another, IPv6, the server's media
    /// port, loopback (denied), another allocation's relay, and the first written as IPv4-mapped IPv6.
    func peer(_ k: UInt8) -> Address {
        switch k & 7 {
        case 0: Address(ip: [8, 8, 4, 4], port: 5000)
        case 1: Address(ip: [8, 8, 4, 4], port: 5001)
        case 2: Address(ip: [9, 9, 9, 9], port: 6000)
        case 3: Address(ip: [0x20, 0x01, 0x48, 0x60] + [UInt8](repeating: 0, count: 10) + [0x88, 0x88], port: 7000)
        case 4: Address(ip: Self.server, port: Self.mediaPort)
        case 5: Address(ip: [127, 0, 0, 1], port: 9000)
        case 6: allocations.table.values.map(\.relay.address).min { $0.port < $1.port } ?? Address(ip: Self.server, port: 50000)
        default: Address(ip: [UInt8](repeating: 0, count: 10) + [0xFF, 0xFF, 8, 8, 4, 4], port: 5000)
        }
    }

    /// How a request is signed (`op / 13`): the key it was signed with when that key is valid.
    struct Signing {
        var username: String
        var password: String
        var realm = Harness.realm
        var integrity = true
        var staleNonce = false
        /// REST credentials past their expiry: valid for CreatePermission and ChannelBind, not Allocate or Refresh.
        var expired = false
    }

    func signing(_ variant: UInt8, more: UInt8) -> (Signing, valid: Bool) {
        switch variant {
        case 1: return (Signing(username: "alice", password: "wrong"), false)
        case 2: return (Signing(username: "bob", password: "hunter2"), true)
        case 3: return (Signing(username: "alice", password: "secret", integrity: false), false)
        case 4: return (Signing(username: "alice", password: "secret", staleNonce: true), false)
        case 5, 6:
            // REST credentials; expired ones (`more & 0x80`) are refused on Allocate and Refresh only.
            let user = variant == 6 ? "carol" + TURNCredentials.sfuScopeSuffix : "carol"
            let username = "\(UInt64(wall) + 60 - (more & 0x80 != 0 ? 120 : 0)):\(user)"
            return (Signing(username: username, password: TURNCredentials.restPassword(secret: Self.secret, username: username),
                            expired: more & 0x80 != 0), true)
        case 7: return (Signing(username: "alice", password: "secret", realm: "elsewhere"), false)
        default: return (Signing(username: "alice", password: "secret"), true)
        }
    }

    func transactionID() -> [UInt8] {
        transactions += 1
        return (0..<12).map { UInt8(truncatingIfNeeded: transactions >> (($0 % 4) * 8)) ^ UInt8($0) }
    }

    func key(_ s: Signing) -> [UInt8] { Message.longTermKey(username: s.username, realm: s.realm, password: s.password) }

    func request(_ method: STUN.Method, client: TURNClient, signing s: Signing, tid: [UInt8]? = nil,
                 attributes: [(AttributeType, [UInt8])] = [], peers: [Address] = []) -> Message {
        var m = Message(type: MessageType(method: method, messageClass: .request), transactionID: tid ?? transactionID())
        for (t, v) in attributes { m = m.adding(t, v) }
        for p in peers { m = m.adding(.xorPeerAddress, address: p) }
        guard s.integrity else { return m }
        m = m.adding(.username, Array(s.username.utf8)).adding(.realm, Array(s.realm.utf8))
            .adding(.nonce, Array(nonces.make(for: client.address.ip, now: s.staleNonce ? now - 700 : now).utf8))
        return try! Message(parsing: m.encode(integrityKey: key(s)))
    }

    /// An answer to `m`: parses, is a response to its transaction, and succeeds only when signed with a valid key,
    /// which signs the success (or, for a retransmitted Allocate, the allocation's key).
    @discardableResult
    func answered(_ reply: [UInt8], to m: Message, valid: Bool, keys: [[UInt8]]) -> Message {
        let r = reparsed("an answer to \(m.type)") { try Message(parsing: reply) }
        check(r.transactionID == m.transactionID, "an answer to another transaction")
        check(r.type.method == m.type.method, "an answer of another method: \(r.type) to \(m.type)")
        check(r.type.messageClass == .successResponse || r.type.messageClass == .errorResponse, "an answer of class \(r.type)")
        if r.type.messageClass == .successResponse {
            check(valid, "a \(m.type) that is not signed with a valid key succeeded")
            check(keys.contains { r.isAuthentic(key: $0) }, "a success not signed with the request's key")
        } else {
            let code = reparsed("an error code") { try r.errorCode() }
            check(code != nil, "an error response without ERROR-CODE")
            if code!.code == 401 || code!.code == 438 { check(r.nonce != nil && r.realm != nil, "a challenge without NONCE and REALM") }
        }
        return r
    }

    func step(op: UInt8, arg: UInt8, more: UInt8, body: [UInt8]) {
        let index = Int(more & 3)
        let client = clients[index]
        let (s, valid) = signing(op / 13, more: more)
        let keys = [key(s)]
        switch op % 13 {
        case 0:
            allocate(client, index: index, arg: arg, more: more, signing: s, valid: valid && !s.expired)
        case 1:
            // Refresh: lifetime 0 (deletes), a number of seconds, or none (the default).
            let lifetime: [(AttributeType, [UInt8])] = arg & 1 != 0 ? [(.lifetime, [0, 0, 0, 0])]
                : arg & 2 != 0 ? [(.lifetime, Self.uint32(UInt32(more) * 30))] : []
            let held = allocations.table[client]?.relay as? FakeRelay
            let m = request(.refresh, client: client, signing: s, attributes: lifetime)
            if case .reply(let reply) = allocations.request(m, from: client, now: now, wall: wall) {
                let r = answered(reply, to: m, valid: valid && !s.expired, keys: keys)
                if r.type.messageClass == .successResponse, arg & 1 != 0 {
                    check(allocations.table[client] == nil && held?.closed == true, "a Refresh to 0 left the allocation or its socket")
                }
            }
        case 2:
            let peers = [peer(more >> 2)] + (arg & 2 != 0 ? [peer(arg >> 2)] : [])
            let m = request(.createPermission, client: client, signing: s, peers: peers)
            if case .reply(let reply) = allocations.request(m, from: client, now: now, wall: wall) {
                let r = answered(reply, to: m, valid: valid, keys: keys)
                if r.type.messageClass == .successResponse, let a = allocations.table[client] {
                    for p in peers {
                        check(a.permits(p.ip, now: now), "a granted permission for \(p) that does not permit it")
                        if case .deny = allocations.configuration.policy.check(ip: p.ip) { check(false, "a permission for denied \(p)") }
                    }
                }
            }
        case 3:
            let number = arg & 2 != 0 ? 0x4000 + UInt16(more >> 4) : UInt16(more) << 8 | UInt16(arg)
            let p = peer(more >> 2)
            let m = request(.channelBind, client: client, signing: s, attributes: [(.channelNumber, [UInt8(number >> 8), UInt8(number & 0xFF), 0, 0])],
                            peers: [p])
            if case .reply(let reply) = allocations.request(m, from: client, now: now, wall: wall) {
                let r = answered(reply, to: m, valid: valid, keys: keys)
                if r.type.messageClass == .successResponse {
                    let a = allocations.table[client]
                    let c = a?.channels[number]
                    check(ChannelData.channels.contains(number), "channel \(number) out of range was bound")
                    check(c?.peer.port == p.port && c?.peer.ip == PeerPolicy.canonical(p.ip), "a bound channel \(number) that is not the peer's")
                    check(a!.permits(p.ip, now: now), "a bound channel without a permission")
                }
            }
        case 4:
            // A Send indication (no answer either way).
            let p = peer(more >> 2)
            var m = Message(type: MessageType(method: .send, messageClass: .indication), transactionID: transactionID())
                .adding(.xorPeerAddress, address: p)
            if arg & 1 == 0 { m = m.adding(.data, body) }
            relayed(from: client, to: p, data: body) { allocations.send(m, from: client, now: now) }
        case 5:
            // ChannelData on a channel the client may have bound, or raw bytes.
            let number = 0x4000 + UInt16(more >> 4)
            let bytes = arg & 1 != 0 ? body : ChannelData.encode(channel: number, body[...], pad: arg & 2 != 0)
            let bound = allocations.table[client]?.channels[number]?.peer
            relayed(from: client, to: bound, data: arg & 1 != 0 ? nil : body) { allocations.channelData(bytes, from: client, now: now) }
        case 6:
            // Data from a peer, on this client's relay or another address of the server.
            let relay = allocations.table[client]?.relay.address ?? Address(ip: Self.server, port: 50000 + UInt16(arg))
            var p = peer(more >> 2)
            if arg & 1 != 0 { p.port &+= 1 }
            let owner = allocations.byRelay[relay]
            if let (to, out) = allocations.fromPeer(body[...], relay: relay, peer: p, now: now) {
                check(owner != nil && owner!.client == to, "data from a peer to \(to), who does not own relay \(relay)")
                check(owner!.expiry > now && owner!.permits(p.ip, now: now), "data from \(p) without a live permission")
                if let first = out.first, ChannelData.isChannelData(firstByte: first) {
                    guard let (number, range) = ChannelData.parse(out) else { fatalError("ChannelData to a client does not parse") }
                    check(Array(out[range]) == body, "ChannelData that does not carry the peer's bytes")
                    let c = owner!.channels[number]
                    check(c != nil && c!.peer == Address(ip: PeerPolicy.canonical(p.ip)!, port: p.port), "ChannelData on a channel not bound to \(p)")
                } else {
                    let m = reparsed("a Data indication") { try Message(parsing: out) }
                    check(m.type.method == .data && m.type.messageClass == .indication, "\(m.type) for data from a peer")
                    check(m.data == body, "a Data indication that does not carry the peer's bytes")
                    let named = reparsed("XOR-PEER-ADDRESS") { try m.xorPeerAddresses() }
                    check(named.first.map { PeerPolicy.canonical($0.ip) == PeerPolicy.canonical(p.ip) && $0.port == p.port } == true,
                          "a Data indication that names \(named), not \(p)")
                }
            }
        case 7:
            // Raw bytes as a request.
            guard let m = try? Message(parsing: body), m.type.messageClass == .request else { return }
            switch allocations.request(m, from: client, now: now, wall: wall) {
            case .reply(let reply):
                let r = reparsed("an answer to raw bytes") { try Message(parsing: reply) }
                check(r.transactionID == m.transactionID, "an answer to another transaction")
            case .allocate(let pending): complete(pending, fails: false)
            case .drop: break
            }
        case 8:
            now += Double(arg) * 4
            allocations.expire(now: now)
            for a in allocations.table.values {
                check(a.expiry > now, "an allocation past its lifetime survived the sweep")
                check(a.permissions.values.allSatisfy { $0 > now }, "a permission past its lifetime survived the sweep")
                check(a.channels.values.allSatisfy { $0.expiry > now }, "a channel past its lifetime survived the sweep")
            }
            check(allocations.reservations.values.allSatisfy { $0.expiry > now }, "a reservation past its lifetime survived the sweep")
        case 9:
            // A TCP or TLS connection closes (a UDP client has no connection to lose).
            guard client.transport != .udp else { return }
            let held = allocations.table[client]?.relay as? FakeRelay
            allocations.closed(client)
            check(allocations.table[client] == nil && (held?.closed ?? true), "a closed connection's allocation or socket is left")
        case 10:
            // Time passes with no sweep: things past their lifetime are met before the sweep reaches them.
            now += Double(arg) / 8
        case 11:
            completeParked(reversed: arg & 1 != 0)
        default:
            guard arg >= 0xF0 else { return }
            allocations.closeAll()
            check(allocations.table.isEmpty && allocations.reservations.isEmpty, "allocations left after closeAll")
        }
    }

    func allocate(_ client: TURNClient, index: Int, arg: UInt8, more: UInt8, signing s: Signing, valid: Bool) {
        var attributes: [(AttributeType, [UInt8])] = []
        switch arg & 3 {
        case 1: attributes.append((.requestedTransport, [6, 0, 0, 0]))
        case 2: break
        default: attributes.append((.requestedTransport, [17, 0, 0, 0]))
        }
        if more & 0x10 != 0 { attributes.append((.evenPort, [more & 0x20 != 0 ? 0x80 : 0])) }
        if more & 0x40 != 0 { attributes.append((.reservationToken, arg & 0x40 == 0 ? lastToken ?? [1, 2, 3, 4, 5, 6, 7, 8] : [9, 9, 9, 9, 9, 9, 9, 9])) }
        if arg & 0x0C != 0 { attributes.append((.requestedAddressFamily, [(arg >> 2) & 3, 0, 0, 0])) }
        if arg & 0x10 != 0 { attributes.append((.lifetime, Self.uint32(UInt32(more) * 30))) }
        if arg & 0x80 != 0 { attributes.append((AttributeType(rawValue: 0x7FF0), [0, 0, 0, 0])) }
        let tid = arg & 0x20 != 0 ? lastAllocate[index] : nil
        let m = request(.allocate, client: client, signing: s, tid: tid, attributes: attributes)
        lastAllocate[index] = m.transactionID
        switch allocations.request(m, from: client, now: now, wall: wall) {
        case .reply(let reply):
            let keys = [key(s)] + (allocations.table[client].map { [$0.credential.key] } ?? [])
            let r = answered(reply, to: m, valid: valid, keys: keys)
            if r.type.messageClass == .successResponse { installed(r, client: client) }
        case .allocate(let pending):
            check(valid, "an Allocate not signed with a valid key is binding a relay")
            check(allocations.table[client] == nil, "binding a relay for a client that has one")
            if more & 0x04 != 0 { parked.append(pending) } else { complete(pending, fails: more & 0x08 != 0) }
        case .drop:
            check(!valid || s.integrity == false, "a signed Allocate dropped")
        }
    }

    /// The relay (and the reserved next port) for `pending` is bound, or not.
    func complete(_ pending: Allocations.PendingAllocation, fails: Bool) {
        var relay: FakeRelay?, reserved: FakeRelay?
        if !fails {
            relay = makeRelay(family: pending.family)
            if pending.evenPort == true { reserved = makeRelay(family: pending.family) }
        }
        let reply = allocations.allocated(pending, relay: relay, reserved: reserved, now: now)
        let keys = [pending.credential.key] + (allocations.table[pending.client].map { [$0.credential.key] } ?? [])
        let r = answered(reply, to: pending.request, valid: true, keys: keys)
        if r.type.messageClass == .successResponse {
            installed(r, client: pending.client)
        } else {
            check((relay?.closed ?? true) && (reserved?.closed ?? true), "a socket of a refused Allocate left open")
        }
    }

    func completeParked(reversed: Bool) {
        let all = reversed ? parked.reversed() : parked
        parked = []
        for p in all { complete(p, fails: false) }
    }

    /// A successful Allocate: its relayed address is the client's allocation's, and its token names a reservation.
    func installed(_ r: Message, client: TURNClient) {
        let a = allocations.table[client]
        check(a != nil, "a successful Allocate without an allocation")
        let relayed = reparsed("XOR-RELAYED-ADDRESS") { try r.xorRelayedAddress() }
        check(relayed == a!.relay.address, "an Allocate answered \(String(describing: relayed)), the allocation relays at \(a!.relay.address)")
        if let token = reparsed("RESERVATION-TOKEN", { try r.reservationToken() }), allocations.reservations[token] != nil { lastToken = token }
    }

    func makeRelay(family: Int) -> FakeRelay {
        nextPort = nextPort == 65534 ? 50000 : nextPort + 1
        let relay = FakeRelay(Address(ip: family == 6 ? Self.server6 : Self.server, port: nextPort))
        relays.append(relay)
        return relay
    }

    /// Runs `send` (a Send indication or ChannelData from `client`) and checks where its bytes went: nowhere, or
    /// unchanged to one permitted, allowed peer from the client's own relay (to another relay of this server, handed
    /// over inside).
    func relayed(from client: TURNClient, to peer: Address?, data: [UInt8]?, _ send: () -> Void) {
        let before = relays.map { ($0.sent.count, $0.delivered.count) }
        let a = allocations.table[client]
        send()
        var out: [(FakeRelay, [UInt8], Address, inside: Bool)] = []
        for (i, relay) in relays.enumerated() {
            if i < before.count {
                out += relay.sent.dropFirst(before[i].0).map { (relay, $0.data, $0.to, false) }
                out += relay.delivered.dropFirst(before[i].1).map { (relay, $0.data, $0.from, true) }
            }
        }
        check(out.count <= 1, "one packet relayed \(out.count) times")
        guard let (relay, bytes, address, inside) = out.first else { return }
        check(a != nil && a!.expiry > now, "data relayed for a client without a live allocation")
        if let data { check(bytes == data, "relayed bytes differ from the client's") }
        let policy = allocations.configuration.policy
        if inside {
            check(address == a!.relay.address, "handed to another relay as from \(address), not the sender's relay")
            check(allocations.byRelay[relay.address] != nil, "handed to a relay that no allocation holds")
            check(a!.credential.scope == .any, "a session-scoped user reached another relay")
            check(a!.permits(relay.address.ip, now: now), "handed to a relay without a permission for it")
        } else {
            check(ObjectIdentifier(relay) == ObjectIdentifier(a!.relay), "data relayed from another client's relay")
            if let peer { check(PeerPolicy.canonical(address.ip) == PeerPolicy.canonical(peer.ip) && address.port == peer.port, "relayed to \(address), not \(peer)") }
            check(a!.permits(address.ip, now: now), "relayed to \(address) without a permission")
            switch policy.check(ip: address.ip) {
            case .deny: check(false, "relayed to denied \(address)")
            case .own: check(policy.mediaPorts.contains(address.port), "relayed to the server's own port \(address.port)")
            case .allow: check(a!.credential.scope == .any, "a session-scoped user relayed to \(address), not the media port")
            }
        }
    }

    func invariants() {
        let table = allocations.table, byRelay = allocations.byRelay, reservations = allocations.reservations
        check(table.count == byRelay.count, "\(table.count) allocations, \(byRelay.count) relays")
        var held = Set<ObjectIdentifier>()
        var perUser: [String: Int] = [:], perSource: [[UInt8]: Int] = [:]
        for (client, a) in table {
            check(a.client == client, "an allocation filed under another client")
            check(byRelay[a.relay.address] === a, "relay \(a.relay.address) does not name its allocation")
            check(held.insert(ObjectIdentifier(a.relay)).inserted, "a relay socket held twice")
            check(a.channels.count == a.channelOfPeer.count, "\(a.channels.count) channels, \(a.channelOfPeer.count) peers")
            for (number, c) in a.channels {
                check(ChannelData.channels.contains(number), "channel \(number) out of range")
                check(a.channelOfPeer[c.peer] == number, "channel \(number)'s peer maps elsewhere")
            }
            check(a.permissions.keys.allSatisfy { PeerPolicy.canonical($0) == $0 }, "a permission for a non-canonical address")
            perUser[a.credential.user, default: 0] += 1
            perSource[client.address.ip, default: 0] += 1
        }
        for r in reservations.values { check(held.insert(ObjectIdentifier(r.socket)).inserted, "a reserved socket held twice") }
        check(table.count <= limits.capacity, "\(table.count) allocations over the capacity")
        check(perUser.values.allSatisfy { $0 <= limits.allocationsPerUser }, "a user over the quota: \(perUser)")
        check(perSource.values.allSatisfy { $0 <= limits.allocationsPerSource }, "a source over the quota")
        for relay in relays {
            let isHeld = held.contains(ObjectIdentifier(relay))
            check(isHeld != relay.closed, isHeld ? "a held relay \(relay.address) is closed" : "relay \(relay.address) open, held by nothing (a leak)")
        }
    }

    static func uint32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
}
