import ICE
import STUN
import Testing

/// Which peers a relay may reach: every spelling of a special-purpose address is refused, the server's own
/// ports only where the media port and relays are.
@Suite struct PeerPolicyTests {
    static func ip(_ text: String) -> [UInt8] { IPAddressText.parse(text)! }

    /// The issue's table: every form, IPv4 and IPv6, refused by the default policy.
    static let refused = [
        "127.0.0.1", "::1", "::ffff:127.0.0.1", "::127.0.0.1", "::ffff:0:127.0.0.1", "0.0.0.0", "::", "10.1.2.3", "172.16.0.1",
        "192.168.1.1", "100.64.0.1", "169.254.169.254", "255.255.255.255", "fe80::1", "fc00::1", "224.0.0.1", "64:ff9b::7f00:1",
        "64:ff9b:1::7f00:1", "2002:7f00:1::", "2001::1",
        // and a few more of each kind
        "::ffff:10.0.0.1", "64:ff9b::a9fe:a9fe", "2002:c0a8:101::1", "fec0::1", "ff02::1", "198.18.0.1", "192.0.0.8", "240.0.0.1",
        "::0.0.0.2", "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    ]

    @Test(arguments: refused) func refusesSpecialPurposeAddressesInEverySpelling(_ text: String) {
        guard case .deny = PeerPolicy().check(ip: Self.ip(text)) else {
            Issue.record("\(text) was allowed")
            return
        }
    }

    @Test(arguments: ["8.8.8.8", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1", "2a00:1450:4001:81c::200e", "1.1.1.1"])
    func allowsPublicAddresses(_ text: String) {
        #expect(PeerPolicy().check(ip: Self.ip(text)) == .allow)
    }

    @Test func canonicalFormsUnwrapIPv4() {
        #expect(PeerPolicy.canonical(Self.ip("::ffff:1.2.3.4")) == [1, 2, 3, 4])
        #expect(PeerPolicy.canonical(Self.ip("::1.2.3.4")) == [1, 2, 3, 4])
        #expect(PeerPolicy.canonical(Self.ip("::ffff:0:1.2.3.4")) == [1, 2, 3, 4])
        #expect(PeerPolicy.canonical(Self.ip("64:ff9b::1.2.3.4")) == [1, 2, 3, 4])
        #expect(PeerPolicy.canonical(Self.ip("64:ff9b:1::1.2.3.4")) == [1, 2, 3, 4])
        #expect(PeerPolicy.canonical(Self.ip("2002:102:304::")) == [1, 2, 3, 4])
        #expect(PeerPolicy.canonical(Self.ip("2001::1")) == nil, "Teredo")
        #expect(PeerPolicy.canonical(Self.ip("64:ff9b:1:1::1")) == nil, "a local NAT64 prefix of another length")
        #expect(PeerPolicy.canonical(Self.ip("::1")) == Self.ip("::1"))
        #expect(PeerPolicy.canonical(Self.ip("2a00::1")) == Self.ip("2a00::1"))
    }

    /// The server's own address gets a permission, but only its media port and live relays are reachable, in
    /// every spelling.
    @Test func ownAddressesAreReachableOnlyOnTheMediaPortAndRelays() {
        let policy = PeerPolicy(ownAddresses: [Self.ip("127.0.0.1"), Self.ip("203.0.113.7")], ownLoopback: true, mediaPorts: [8000])
        #expect(policy.check(ip: Self.ip("127.0.0.1")) == .own)
        #expect(policy.check(ip: Self.ip("::ffff:127.0.0.1")) == .own)
        #expect(policy.check(ip: Self.ip("127.0.0.2")) == .own, "every loopback address reaches a server on a wildcard")
        let relay = Address(ip: Self.ip("203.0.113.7"), port: 61002)
        let isRelay: (Address) -> Bool = { $0 == relay }
        #expect(policy.check(peer: Address(ip: Self.ip("127.0.0.1"), port: 8000), isRelay: isRelay) == .allow)
        #expect(policy.check(peer: Address(ip: Self.ip("::ffff:203.0.113.7"), port: 61002), isRelay: isRelay) == .allow)
        for port: UInt16 in [8080, 1935, 3478, 22, 61003] {
            guard case .deny = policy.check(peer: Address(ip: Self.ip("203.0.113.7"), port: port), isRelay: isRelay) else {
                Issue.record("own port \(port) reachable")
                continue
            }
            guard case .deny = policy.check(peer: Address(ip: Self.ip("::ffff:127.0.0.1"), port: port), isRelay: isRelay) else {
                Issue.record("own port \(port) reachable through the mapped loopback")
                continue
            }
        }
        #expect(policy.check(peer: Address(ip: Self.ip("8.8.8.8"), port: 53), isRelay: isRelay) == .allow)
    }

    @Test func loopbackAndAllowListsAreOptIn() {
        let lan = PeerPolicy(allowed: [PeerPolicy.Network("192.168.0.0/16")!])
        #expect(lan.check(ip: Self.ip("192.168.1.20")) == .allow)
        #expect(lan.check(ip: Self.ip("::ffff:192.168.1.20")) == .allow)
        guard case .deny = lan.check(ip: Self.ip("10.0.0.1")) else { Issue.record("10/8 allowed"); return }
        let tests = PeerPolicy(ownAddresses: [Self.ip("127.0.0.1")], mediaPorts: [8000], allowLoopback: true)
        #expect(tests.check(ip: Self.ip("127.0.0.2")) == .allow)
        #expect(tests.check(peer: Address(ip: Self.ip("127.0.0.2"), port: 3480), isRelay: { _ in false }) == .allow)
        guard case .deny = tests.check(peer: Address(ip: Self.ip("127.0.0.1"), port: 8080), isRelay: { _ in false }) else {
            Issue.record("the server's HTTP port reachable with loopback allowed")
            return
        }
    }

    @Test func addressText() {
        #expect(IPAddressText.parse("1.2.3.4") == [1, 2, 3, 4])
        #expect(IPAddressText.parse("[::1]") == [UInt8](repeating: 0, count: 15) + [1])
        for bad in ["1.2.3", "1.2.3.256", "1.2.3.4.5", "::1::", "12345::", "1:2:3:4:5:6:7:8:9", "", "a.b.c.d", ":::"] {
            #expect(IPAddressText.parse(bad) == nil, "\(bad)")
        }
        for text in ["::", "::1", "fe80::1", "2001:db8::8:800:200c:417a", "64:ff9b::7f00:1", "1:2:3:4:5:6:7:8"] {
            #expect(IPAddressText.format(IPAddressText.parse(text)!) == text)
        }
        #expect(PeerPolicy.Network("10.0.0.0/33") == nil && PeerPolicy.Network("fe80::/129") == nil)
        #expect(PeerPolicy.Network("172.16.0.0/12")!.contains([172, 31, 255, 255]))
        #expect(!PeerPolicy.Network("172.16.0.0/12")!.contains([172, 32, 0, 0]))
    }
}
