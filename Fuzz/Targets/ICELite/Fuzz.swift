import FuzzSupport
@testable import ICE
import STUN

/// The media port's ICE-lite agent as a state machine: sessions come and go, restart, and take connectivity checks
/// from eight addresses, raw ones and ones the harness signs with the session's password (so the fuzzer gets past
/// MESSAGE-INTEGRITY to nomination, address moves and the per-session address limit). After every step: each
/// validated address belongs to one live session and maps back to it, a selected address is a validated one, no
/// session holds more addresses than allowed, each ufrag names its session; every reply is a STUN response to the
/// request's transaction, and a reply to a valid check authenticates with that session's password.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = UnsafeBufferPointer(start: data, count: size)[...]
    var agent = ICELiteAgent()
    var now = ContinuousClock.now
    var slots: [ICELiteAgent.SessionID?] = [nil, nil, nil, nil]
    var made = 0
    func address(_ b: UInt8) -> PeerAddress {
        PeerAddress(transport: b & 8 == 0 ? .udp : .tcp, ipv4: 0x7F00_0001 + UInt32(b & 3), port: 5000 + UInt16(b & 4))
    }
    func credentials() -> ICECredentials {
        made += 1
        return ICECredentials(ufrag: "u\(made % 6)", password: "password-of-\(made)-0123456789")
    }
    while let op = input.popFirst() {
        let arg = input.popFirst() ?? 0
        let slot = Int(arg & 3)
        switch op % 7 {
        case 0, 1:
            // A check: raw bytes, or a Binding request the harness builds and signs.
            let length = Int(input.popFirst() ?? 0)
            let body = Array(input.prefix(length))
            input = input.dropFirst(length)
            let from = address(arg >> 2)
            var bytes = body
            var key: [UInt8]?
            if op % 7 == 1, let id = slots[slot], let s = agent.sessions[id] {
                let remote = op & 0x10 != 0 ? "wrong" : (s.remoteUfrag ?? "any")
                var m = Message(type: MessageType(method: .binding, messageClass: .request),
                                transactionID: Array((body + [UInt8](repeating: 7, count: 12)).prefix(12)))
                    .adding(.username, Array("\(s.local.ufrag):\(remote)".utf8))
                    .adding(op & 0x20 != 0 ? .iceControlled : .iceControlling, [0, 0, 0, 0, 0, 0, 0, 1])
                if op & 0x40 != 0 { m = m.adding(.useCandidate, []) }
                if body.count > 12 { m = m.adding(AttributeType(rawValue: UInt16(body[12]) << 8 | 0x80), Array(body.dropFirst(13))) }
                key = op & 0x80 != 0 ? Array("not the password".utf8) : Array(s.local.password.utf8)
                bytes = m.encode(integrityKey: key, fingerprint: op & 8 != 0)
            }
            let request = try? Message(parsing: bytes)
            let outcome = agent.handleSTUN(bytes, from: from, now: now)
            if case .reply(let reply, let session, let events) = outcome {
                guard let r = try? Message(parsing: reply) else { fatalError("a reply that is not STUN: \(reply)") }
                check(request != nil && r.transactionID == request!.transactionID, "a reply to another transaction")
                check(r.type.messageClass == .successResponse || r.type.messageClass == .errorResponse, "reply class \(r.type)")
                if let session {
                    let s = agent.sessions[session]
                    check(s != nil && r.isAuthentic(key: Array(s!.local.password.utf8)), "a valid check's reply does not authenticate")
                    check(r.type.messageClass == .successResponse, "a valid check answered with an error")
                    check(agent.session(for: from) == session, "a valid check's address is not the session's")
                } else {
                    check(events.isEmpty, "events without a valid check: \(events)")
                }
                for case .selected(let id, let a, _) in events { check(id == session && a == from && agent.sessions[id]?.selected == from) }
            }
        case 2:
            if slots[slot] == nil { slots[slot] = agent.addSession(local: credentials(), remoteUfrag: arg & 4 != 0 ? "any" : nil, now: now) }
        case 3:
            if let id = slots[slot] {
                check(agent.removeSession(id) != nil, "a live session could not be removed")
                slots[slot] = nil
                check(agent.sessions[id] == nil)
            }
        case 4:
            if let id = slots[slot] { _ = agent.restart(id, local: credentials(), remoteUfrag: arg & 4 != 0 ? "any" : nil, now: now) }
        case 5:
            agent.forget(address(arg >> 2))
            check(agent.session(for: address(arg >> 2)) == nil, "a forgotten address still maps to a session")
        default:
            now += .seconds(Int(arg))
            for case .closedSession(let id, _) in agent.expire(now: now) {
                check(agent.sessions[id] == nil, "an expired session is still there")
                if let i = slots.firstIndex(of: id) { slots[i] = nil }
            }
        }
        invariants(agent, slots)
    }
    return 0
}

func invariants(_ agent: ICELiteAgent, _ slots: [ICELiteAgent.SessionID?]) {
    check(agent.byUfrag.count == agent.sessions.count, "\(agent.byUfrag.count) ufrags for \(agent.sessions.count) sessions")
    for (id, s) in agent.sessions {
        check(slots.contains(id), "a session the harness does not know")
        check(agent.byUfrag[s.local.ufrag] == id, "ufrag \(s.local.ufrag) does not name its session")
        check(s.validated.count <= agent.configuration.addressesPerSession, "\(s.validated.count) validated addresses")
        check(Set(s.validated).count == s.validated.count, "an address validated twice")
        for a in s.validated { check(agent.byAddress[a] == id, "validated \(a) maps to \(String(describing: agent.byAddress[a])), not \(id)") }
        if let sel = s.selected { check(s.validated.contains(sel), "selected \(sel) is not validated") }
    }
    for (a, id) in agent.byAddress { check(agent.sessions[id]?.validated.contains(a) == true, "\(a) maps to \(id), which does not hold it") }
}
