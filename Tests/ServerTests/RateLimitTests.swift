import Foundation
import NIOCore
@testable import Server
import Testing

/// Per-address rate limits on the HTTP port: the API, WebRTC session setups and WebSocket upgrades each have a
/// token bucket per client; over it a request gets 429 with Retry-After and a close; media and pages are not
/// limited; behind a trusted proxy the client is the rightmost untrusted `X-Forwarded-For` address, and from
/// anyone else that header changes nothing.
@Suite(.serialized, .timeLimit(.minutes(1))) struct RateLimitTests {
    static func limits(proxies: [String] = []) -> HTTPRateLimits {
        // A token every 20 s: a loaded machine's slow requests do not earn one back within a test.
        var l = HTTPRateLimits()
        l.api = RateLimit(perSecond: 0.05, burst: 4)
        l.webrtc = RateLimit(perSecond: 0.05, burst: 3)
        l.websocket = RateLimit(perSecond: 0.05, burst: 2)
        l.trustedProxies = proxies
        return l
    }

    @Test func addressBlocksAndTheClientBehindAProxy() throws {
        let v4 = try #require(AddressBlock("10.1.0.0/16")), v6 = try #require(AddressBlock("2001:db8::/32"))
        #expect(v4.contains(AddressBlock.bytes("10.1.255.7")!) && !v4.contains(AddressBlock.bytes("10.2.0.1")!))
        #expect(v4.contains(AddressBlock.bytes("::ffff:10.1.2.3")!), "an IPv4-mapped address is its IPv4 address")
        #expect(v6.contains(AddressBlock.bytes("2001:db8:1::5")!) && !v6.contains(AddressBlock.bytes("2001:db9::5")!))
        #expect(AddressBlock("10.0.0.0/33") == nil && AddressBlock("proxy.example") == nil && AddressBlock("0.0.0.0/0") != nil)
        let limiter = try HTTPRateLimiter(Self.limits(proxies: ["127.0.0.1", "10.0.0.0/8"]))
        #expect(limiter.client(connection: "127.0.0.1", forwardedFor: ["203.0.113.9, 10.0.0.2"]) == "203.0.113.9")
        #expect(limiter.client(connection: "127.0.0.1", forwardedFor: ["198.51.100.1", "203.0.113.9"]) == "203.0.113.9",
                "the rightmost untrusted hop: what the client wrote first is not believed")
        #expect(limiter.client(connection: "127.0.0.1", forwardedFor: []) == "127.0.0.1")
        #expect(limiter.client(connection: "127.0.0.1", forwardedFor: ["not-an-address"]) == "127.0.0.1")
        #expect(limiter.client(connection: "192.0.2.1", forwardedFor: ["203.0.113.9"]) == "192.0.2.1", "not a trusted proxy")
        #expect(throws: (any Error).self) { try HTTPRateLimiter(Self.limits(proxies: ["proxy.example"])) }
    }

    @Test func tokensRefillAtTheRate() throws {
        let limiter = try HTTPRateLimiter(Self.limits())
        let t0 = ContinuousClock.now
        for _ in 0..<4 { #expect(limiter.take(.api, client: "a", now: t0) == nil) }
        let wait = try #require(limiter.take(.api, client: "a", now: t0))
        #expect(abs(wait - 20) < 0.01, "one token every 20 s: \(wait)")
        #expect(limiter.take(.api, client: "b", now: t0) == nil, "each address its own bucket")
        #expect(limiter.take(.webrtc, client: "a", now: t0) == nil, "each kind its own bucket")
        #expect(limiter.take(.api, client: "a", now: t0 + .seconds(19)) != nil)
        #expect(limiter.take(.api, client: "a", now: t0 + .seconds(20)) == nil)
    }

    static func status(_ server: TestServer, _ request: String) async throws -> (status: Int, retryAfter: Int?) {
        let r = try await HTTPLimitsTests.send(Array(request.utf8), port: server.ports.http)
        return (r.status, r.retryAfter)
    }

    @Test func overTheLimitIs429AndMediaIsNot() async throws {
        let server = try await TestServer.start { $0.httpRateLimits = Self.limits() }
        defer { Task { await server.stop() } }
        let api = "GET /api/v1/streams HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        for _ in 0..<4 { #expect(try await Self.status(server, api).status == 200) }
        let over = try await Self.status(server, api)
        #expect(over.status == 429 && (over.retryAfter ?? 0) >= 1, "\(over)")
        let whep = "POST /whep/live/none HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nContent-Length: 3\r\nConnection: close\r\n\r\nv=0"
        for _ in 0..<3 { #expect(try await Self.status(server, whep).status != 429) }
        #expect(try await Self.status(server, whep).status == 429)
        let upgrade = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        for _ in 0..<2 { #expect(try await Self.status(server, upgrade).status == 101) }
        #expect(try await Self.status(server, upgrade).status == 429)
        // Media and pages: never limited.
        for _ in 0..<20 {
            #expect(try await Self.status(server, "GET /live/none.flv HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").status == 404)
        }
    }

    @Test func behindATrustedProxyEachClientHasItsOwnBucket() async throws {
        for trusted in [true, false] {
            let server = try await TestServer.start { $0.httpRateLimits = Self.limits(proxies: trusted ? ["127.0.0.1"] : []) }
            defer { Task { await server.stop() } }
            func api(_ client: String) async throws -> Int {
                try await Self.status(server, "GET /api/v1/streams HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: \(client)\r\nConnection: close\r\n\r\n").status
            }
            for _ in 0..<4 { #expect(try await api("203.0.113.5") == 200) }
            #expect(try await api("203.0.113.5") == 429)
            // Another client behind the proxy has its own bucket; from an untrusted peer the header is ignored.
            #expect(try await api("203.0.113.6") == (trusted ? 200 : 429), "trusted: \(trusted)")
        }
    }
}
