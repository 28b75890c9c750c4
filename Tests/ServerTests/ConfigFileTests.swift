import Foundation
import ICE
import RTMPBridge
import Server
import Testing

@Suite(.timeLimit(.minutes(1))) struct ConfigFileTests {
    /// The example in docs/CONFIG.md, kept in step with it.
    static let example = """
        listen: 127.0.0.2
        log_level: debug
        http:
          port: 18080
          api_requests_per_second: 0
          webrtc_requests_per_second: 2.5
          webrtc_burst: 7
          websocket_burst: 3
          trusted_proxies: [10.0.0.1, 2001:db8::/32]
        rtmp:
          port: 11935
          max_message_bytes: 1048576
          max_buffered_bytes: 2097152
          handshake_timeout_seconds: 3
          publish_idle_timeout_seconds: 7.5
          max_connections: 42
        hub:
          gop_cache_max_bytes: 1000000
          viewer_max_queue_bytes: 2000000
          viewer_max_wait_seconds: 2
          viewer_send_buffer_bytes: 65536
          republish_grace_seconds: 4
        hls:
          target_duration_seconds: 4
          minimum_segment_seconds: 1
          part_target_seconds: 0.25
          window_segments: 5
          retained_after_window: 8
        stun:
          port: 13478
        rtc:
          port: 18000
          host: [203.0.113.7, 2001:db8::7]
          tcp: false
          gso: false
          consent_timeout_seconds: 10
          certificate_file: /etc/liveswarm/dtls-cert.pem
          key_file: /etc/liveswarm/dtls-key.pem
          catch_up_speed: 2.5
          opus_kbps: 128
        auth:
          publish_keys: [secret1]
          stream_keys:
            live/studio: secret2
        turn:
          enabled: true
          realm: example.org
          users: ["alice:pa:ss"]
          secrets: [rest1, rest2]
          relay_ports: 50000-50999
          external_ip: 198.51.100.4
          relay_ip: 10.0.0.4
          relay_ipv6: 2001:db8::4
          allowed_peers: [10.0.0.0/8]
          allocations_per_user: 10
          allocations_per_source: 20
          max_allocations: 30
          max_mbps_per_allocation: 40
          default_lifetime: 120
          max_lifetime: 1800
          tls_port: 5349
          tls_certificate: /etc/liveswarm/turn-chain.pem
          tls_key: /etc/liveswarm/turn-key.pem
          p2p: true
        """

    @Test func appliesEveryKey() throws {
        let c = try ConfigFile.parse(Self.example).apply(to: ServerConfiguration())
        #expect(c.listenHost == "127.0.0.2" && c.rtmp.host == "127.0.0.2")
        #expect(c.httpPort == 18080 && c.rtmp.port == 11935 && c.stun.port == 13478 && c.stun.host == "127.0.0.2")
        #expect(c.rtc.port == 18000 && c.rtc.host == "127.0.0.2" && c.rtc.advertisedHosts == ["203.0.113.7", "2001:db8::7"])
        #expect(c.rtc.tcp == false && c.rtc.segmentation == false && c.rtc.agent.consentTimeout == .seconds(10))
        #expect(c.dtlsCertificate == DTLSCertificateFiles(certificate: "/etc/liveswarm/dtls-cert.pem", key: "/etc/liveswarm/dtls-key.pem"))
        #expect(c.rtmp.maxMessageSize == 1 << 20 && c.rtmp.maxBufferedBytes == 2 << 20)
        #expect(c.rtmp.handshakeTimeout == .seconds(3) && c.rtmp.publishIdleTimeout == .milliseconds(7500))
        #expect(c.hub.gopCacheMaxBytes == 1_000_000 && c.hub.viewerMaxQueueBytes == 2_000_000)
        #expect(c.hub.viewerMaxWait == .seconds(2) && c.hub.republishGrace == .seconds(4))
        #expect(c.hub.viewerSendBuffer == 65536)
        #expect(c.hls.targetDuration == 4 && c.hls.minimumDuration == 1000 && c.hls.partTarget == 250)
        #expect(c.hls.windowSegments == 5 && c.hls.retainedAfterWindow == 8)
        #expect(c.rtmp.maxConnections == 42)
        #expect(c.httpRateLimits.api.isOff && c.httpRateLimits.webrtc == RateLimit(perSecond: 2.5, burst: 7))
        #expect(c.httpRateLimits.websocket == RateLimit(perSecond: 10, burst: 3))
        #expect(c.httpRateLimits.trustedProxies == ["10.0.0.1", "2001:db8::/32"])
        #expect(c.webRTC.catchUpSpeed == 2.5 && c.webRTC.opusBitrate == 128_000)
        #expect(c.rtmp.authentication.allows(stream: "live/x", query: "key=secret1"))
        #expect(c.rtmp.authentication.allows(stream: "live/studio", query: "key=secret2"))
        #expect(!c.rtmp.authentication.allows(stream: "live/x", query: "key=secret2"))
        #expect(try ConfigFile.parse(Self.example).logLevel == "debug")
        let t = c.stun.turn
        #expect(t.enabled && t.forP2P && t.realm == "example.org" && t.users == ["alice": "pa:ss"] && t.secrets == ["rest1", "rest2"])
        #expect(t.relayPorts == 50000...50999 && t.externalIP == "198.51.100.4" && t.relayIP == "10.0.0.4" && t.relayIPv6 == "2001:db8::4" && t.allowedPeers == ["10.0.0.0/8"])
        #expect(t.limits.allocationsPerUser == 10 && t.limits.allocationsPerSource == 20 && t.limits.capacity == 30 && t.limits.bytesPerSecond == 5_000_000)
        #expect(t.limits.defaultLifetime == 120 && t.limits.maximumLifetime == 1800)
        #expect(t.tls == TURNConfiguration.TLS(port: 5349, certificate: "/etc/liveswarm/turn-chain.pem", key: "/etc/liveswarm/turn-key.pem"))
    }

    @Test func docsExampleParses() throws {
        // docs/CONFIG.md's block must stay valid: extract it and parse it.
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../docs/CONFIG.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        let yaml = try #require(text.components(separatedBy: "```yaml\n").dropFirst().first?.components(separatedBy: "```").first)
        _ = try ConfigFile.parse(yaml).apply(to: ServerConfiguration())
    }

    @Test func pushesAndTheWHIPBridge() throws {
        let c = try ConfigFile.parse("""
            rtc:
              whip_to_hub: false
              aac_kbps: 96
            pushes:
              - stream: live/cam
                url: rtmp://a.rtmp.youtube.com/live2/abcd-efgh
              - stream: live/cam
                url: rtmp://127.0.0.1:1936/live/copy?token=1
            """).apply(to: ServerConfiguration())
        #expect(!c.webRTC.whipToHub && c.webRTC.aacBitrate == 96_000)
        #expect(c.pushes.map(\.url) == ["rtmp://a.rtmp.youtube.com/live2/abcd-efgh", "rtmp://127.0.0.1:1936/live/copy?token=1"])
        #expect(c.pushes.allSatisfy { $0.stream.description == "live/cam" })
        let target = try RTMPPushTarget(url: c.pushes[0].url)
        #expect(target.app == "live2" && target.key == "abcd-efgh" && target.port == 1935 && target.tcURL == "rtmp://a.rtmp.youtube.com:1935/live2")
        #expect(try RTMPPushTarget(url: c.pushes[1].url).key == "copy?token=1")
    }

    @Test func emptyFileKeepsDefaults() throws {
        #expect(try ConfigFile.parse("").apply(to: ServerConfiguration()) == ServerConfiguration())
        #expect(try ConfigFile.parse("# nothing\n").apply(to: ServerConfiguration()) == ServerConfiguration())
    }

    @Test(arguments: [
        ("htttp:\n  port: 1\n", "unknown key 'htttp'"),
        ("rtmp:\n  prot: 1\n", "unknown key 'rtmp.prot'"),
        ("http:\n  port: 70000\n", "http.port must be 0-65535"),
        ("http:\n  trusted_proxies: [proxy.example]\n", "http.trusted_proxies: \"proxy.example\" is neither an address nor a CIDR block"),
        ("http:\n  webrtc_burst: 0\n", "http.webrtc_burst must be 1 or more"),
        ("http:\n  api_requests_per_second: -1\n", "http.api_requests_per_second must be 0 (off) or more"),
        ("hub:\n  viewer_max_wait_seconds: -1\n", "hub.viewer_max_wait_seconds must be between"),
        ("rtmp:\n  max_message_bytes: 0\n", "rtmp.max_message_bytes must be positive"),
        ("- a\n- b\n", "the top level must be a mapping"),
        ("turn:\n  users: [alice]\n", "turn.users takes NAME:PASSWORD"),
        ("turn:\n  tls_port: 5349\n", "turn.tls_port, turn.tls_certificate and turn.tls_key go together"),
        ("turn:\n  relay_ports: 100-200\n", "turn.relay_ports takes MIN-MAX"),
        ("turn:\n  external_ip: example.org\n", "turn.external_ip must be an IP address"),
        ("turn:\n  default_lifetime: 10\n", "turn.default_lifetime must be 30-3600 seconds"),
        ("turn:\n  max_lifetime: 60\n  default_lifetime: 600\n", "turn.default_lifetime must be 30-60 seconds"),
        ("turn:\n  max_lifetime: 100000\n", "turn.max_lifetime must be 30-86400 seconds"),
        ("turn:\n  allowed_peers: [10.0.0.0/33]\n", "turn.allowed_peers takes CIDR"),
        ("hls:\n  part_target_seconds: 3\n", "need part_target_seconds <= minimum_segment_seconds"),
        ("hls:\n  segment_seconds: 3\n", "unknown key 'hls.segment_seconds'"),
        ("http: [\n", "not valid YAML"),
        ("http:\n  port: eighty\n", "config:"),
        ("rtc:\n  catch_up_speed: 0.5\n", "rtc.catch_up_speed must be between 1 and 16"),
        ("rtc:\n  opus_kbps: 8\n", "rtc.opus_kbps must be between 16 and 510"),
        ("rtc:\n  aac_kbps: 1000\n", "rtc.aac_kbps must be between 32 and 320"),
        ("pushes:\n  - stream: live\n    url: rtmp://h/app/key\n", "pushes[0].stream must be APP/STREAM"),
        ("pushes:\n  - stream: live/a\n    url: http://h/app/key\n", "pushes[0].url: bad push URL: the URL must start with rtmp://"),
        ("pushes:\n  - stream: live/a\n    url: rtmp://h/app/key\n    key: x\n", "unknown key 'pushes.key'"),
        ("pushes:\n  stream: live/a\n", "pushes must be a list"),
        // YAML's complex keys (a list or a mapping as a key, after "?"): Yams trapped on them (fuzz-config's long
        // run, a "?" left at a line's start before a list), which stopped `liveswarm --config` with a crash.
        ("pushes:\n?\n  - stream: live/a\n", "every key must be a plain name"),
        ("http:\n  ? [a, b]\n  : 1\n", "every key must be a plain name"),
        ("? {a: 1}\n: x\n", "every key must be a plain name"),
    ])
    func rejectsBadFiles(yaml: String, message: String) {
        do {
            _ = try ConfigFile.parse(yaml).apply(to: ServerConfiguration())
            Issue.record("accepted \(yaml)")
        } catch {
            #expect("\(error)".contains(message), "\(error)")
        }
    }

    @Test func publishAuthentication() {
        let open = PublishAuthentication()
        #expect(open.allows(stream: "live/a", query: ""))
        let auth = PublishAuthentication(keys: ["k1"], streamKeys: ["live/b": "k2"])
        #expect(auth.allows(stream: "live/a", query: "key=k1"))
        #expect(auth.allows(stream: "live/a", query: "foo=1&token=k1"))
        #expect(!auth.allows(stream: "live/a", query: ""))
        #expect(!auth.allows(stream: "live/a", query: "key=k2"))
        #expect(!auth.allows(stream: "live/a", query: "key="))
        #expect(!auth.allows(stream: "live/a", query: "keyk1"))
        #expect(auth.allows(stream: "live/b", query: "key=k2"))
    }
}
