// swift-tools-version:6.0
// LiveSwarm: live video delivery server.
//
// Layers (dependencies point down only):
//   liveswarm (executable)         CLI, config file, signal handling
//   Server                         HTTP routes (Hummingbird), metrics, service group
//   Signaling                      WHIP/WHEP routes; the rooms' protocol (state machine) and its /ws endpoint
//   RTMPBridge                     RTMP listener (NIOPosix), RTMP sessions, HTTP-FLV viewers
//   SFU                            WebRTC transports, WHIP/WHEP routing, the RTMP-to-WebRTC bridge
//   ICE                            STUN and TURN server (UDP/TCP 3478), ICE-lite media port
//   StreamHub, HLS, P2PTracker     sources, GOP cache, timestamp correction, viewer queues; HLS segmenter;
//                                  the P2P tracker's swarms (WebTorrent protocol, no sockets)
//   DTLS, SRTP, Audio, Digest      OpenSSL DTLS and SRTP on OpenSSL's ciphers, libavcodec+libopus (AAC to Opus),
//                                  libcrypto's digests
//                                  behind small Swift types
//   RTMP, FLV, MPEGTS, MP4, STUN, SDP, RTP, Codecs, AMF0  pure wire codecs: no sockets, clocks or globals
//   Locks                          the Mutex every module uses (Synchronization's; a pthread one in TSan builds)
import PackageDescription

// The media path (every packet of every WebRTC session goes through these) is optimized even in debug builds: the
// test suite runs its servers in-process from the debug build, and an unoptimized SFU forwarding for five browsers
// fell seconds behind on two cores, so the browser tests measured the build mode rather than the server.
let mediaPath: [SwiftSetting] = [.unsafeFlags(["-O"], .when(configuration: .debug))]

let package = Package(
    name: "LiveSwarm",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "liveswarm", targets: ["liveswarm"]),
        // The parsers of outside input (and SRTP with libsrtp, its oracle in a differential target), for the fuzz
        // targets in Fuzz/: a package of its own, so that
        // `-sanitize=fuzzer` never links libFuzzer's `main` into liveswarm or the bench (docs/RELIABILITY.md).
        .library(name: "LiveSwarmParsers", targets: ["STUN", "RTP", "SDP", "AMF0", "FLV", "Codecs", "RTMP", "P2PTracker",
                                                     "SRTP", "LibSRTP"]),
        // The services whose own parsers face outside input (TCP framers, the ICE-lite agent, offers, room messages,
        // tokens, HLS parameters, viewer reports, the config file, the RTMP connection and the hub), for the fuzz targets.
        .library(name: "LiveSwarmServices", targets: ["ICE", "SFU", "Signaling", "Server", "RTMPBridge", "StreamHub"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
    ],
    targets: [
        // The lock: Synchronization's Mutex, or a pthread one that ThreadSanitizer sees under -D LIVESWARM_TSAN.
        .target(name: "Locks"),
        // Listening sockets that survive running out of file descriptors.
        .target(name: "ListenerGuard", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Pure codecs.
        .target(name: "AMF0", dependencies: [.product(name: "NIOCore", package: "swift-nio")]),
        .target(name: "Codecs", dependencies: [.product(name: "NIOCore", package: "swift-nio")]),
        .target(name: "FLV", dependencies: ["AMF0", "Codecs", .product(name: "NIOCore", package: "swift-nio")]),
        .target(name: "MPEGTS", dependencies: ["Codecs", .product(name: "NIOCore", package: "swift-nio")]),
        .target(name: "MP4", dependencies: ["Codecs", .product(name: "NIOCore", package: "swift-nio")]),
        // MD5, SHA-1, SHA-256 and HMAC from OpenSSL's libcrypto, which DTLS links anyway.
        .target(name: "CDigest", linkerSettings: [.linkedLibrary("crypto")]),
        .target(name: "Digest", dependencies: ["CDigest"]),
        .target(name: "STUN", dependencies: ["Digest"], swiftSettings: mediaPath),
        .target(name: "SDP"),
        .target(name: "RTP", swiftSettings: mediaPath),
        // OpenSSL's DTLS behind a small C API (macros, variadics and a datagram BIO are easier in C).
        .target(name: "CDTLS", linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]),
        .target(name: "DTLS", dependencies: ["CDTLS"], swiftSettings: mediaPath),
        // SRTP's ciphers (AES-CTR, HMAC-SHA1, AES-GCM) from OpenSSL's EVP, keyed once per session; the framing is Swift.
        .target(name: "CSRTPCipher", linkerSettings: [.linkedLibrary("crypto")]),
        .target(name: "SRTP", dependencies: ["CSRTPCipher", "DTLS"], swiftSettings: mediaPath),
        // Debian's libsrtp2: the oracle SRTP's tests and benchmark hold it to, never on the server's path.
        .systemLibrary(name: "CSRTP", pkgConfig: "libsrtp2", providers: [.apt(["libsrtp2-dev"])]),
        .target(name: "LibSRTP", dependencies: ["CSRTP", "DTLS", "SRTP"], swiftSettings: mediaPath),
        // libavcodec's AAC decoder, libswresample and libopus behind a small C API (FFmpeg's error macros and
        // libopus's variadic ctl calls are not callable from Swift), and the AAC-to-Opus transcoder on them.
        .target(name: "CAudio", linkerSettings: [
            .linkedLibrary("avcodec"), .linkedLibrary("swresample"), .linkedLibrary("avutil"), .linkedLibrary("opus"),
        ]),
        .target(name: "Audio", dependencies: ["CAudio"]),
        .target(name: "SFU", dependencies: [
            "ICE", "DTLS", "SRTP", "SDP", "RTP", "StreamHub", "FLV", "Codecs", "Audio",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: mediaPath),
        .target(name: "RTMP", dependencies: [
            "AMF0", "Digest",
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        // Engines.
        .target(name: "StreamHub", dependencies: [
            "Locks", "FLV", "Codecs", "AMF0",
            .product(name: "DequeModule", package: "swift-collections"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The WebTorrent-protocol tracker's swarms: a state machine, no sockets (the WebSocket is in Server).
        .target(name: "P2PTracker", dependencies: [
            "Digest",
            .product(name: "DequeModule", package: "swift-collections"),
        ]),
        .target(name: "HLS", dependencies: [
            "Locks", "StreamHub", "MPEGTS", "MP4", "FLV", "Codecs", "Digest",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Services.
        .target(name: "RTMPBridge", dependencies: [
            "Locks", "ListenerGuard", "RTMP", "FLV", "AMF0", "StreamHub",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // sendmmsg(2), which Glibc's Swift module lacks: the media port sends its datagrams itself (DatagramWriter).
        .target(name: "CDatagram"),
        // mallinfo2(3), which Glibc's Swift module lacks: the heap figures on /metrics.
        .target(name: "CHeap"),
        .target(name: "ICE", dependencies: [
            "Locks", "ListenerGuard", "STUN", "Digest", "DTLS", "CDatagram",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ], swiftSettings: mediaPath),
        // Every way a session is set up: WHIP/WHEP over HTTP, and the rooms' WebSocket protocol at /ws.
        .target(name: "Signaling", dependencies: [
            "Locks", "SFU", "StreamHub", "RTMPBridge", "SDP", "Digest",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
            .product(name: "NIOWebSocket", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "Server", dependencies: [
            "Locks", "ListenerGuard", "Signaling", "RTMPBridge", "StreamHub", "FLV", "HLS", "ICE", "SDP", "SFU", "DTLS", "P2PTracker", "CHeap",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
            .product(name: "NIOWebSocket", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Yams", package: "Yams"),
        ]),
        .executableTarget(name: "liveswarm", dependencies: [
            "Server", "Signaling", "ICE",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Load generator for BENCHMARKS.md.
        .executableTarget(name: "liveswarm-bench", dependencies: [
            "RTMP", "AMF0", "FLV", "SRTP", "LibSRTP", "DTLS", "RTP", "STUN", "Audio", "P2PTracker", "Locks",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            "LoopbackWebSocket",
        ], path: "Sources/bench"),

        // A plain ws:// client on swift-nio's WebSocket codec for the tracker's tests and benchmark (no TLS library).
        .target(name: "LoopbackWebSocket", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOWebSocket", package: "swift-nio"),
        ]),
        // Helpers shared by the test targets (a deterministic generator for mutation tests).
        .target(name: "TestSupport", dependencies: [.product(name: "NIOCore", package: "swift-nio")], path: "Tests/TestSupport"),
        .testTarget(name: "AMF0Tests", dependencies: ["AMF0", "TestSupport"]),
        .testTarget(name: "CodecsTests", dependencies: ["Codecs", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "FLVTests", dependencies: ["FLV", "Codecs", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "MPEGTSTests", dependencies: ["MPEGTS", "Codecs", "TestSupport", .product(name: "NIOCore", package: "swift-nio")]),
        .testTarget(name: "HLSTests", dependencies: [
            "HLS", "StreamHub", "MPEGTS", "Codecs", "FLV", "TestSupport",
        ]),
        .testTarget(name: "DigestTests", dependencies: ["Digest", "TestSupport"]),
        .testTarget(name: "STUNTests", dependencies: ["STUN", "TestSupport"]),
        .testTarget(name: "SDPTests", dependencies: ["SDP"]),
        .testTarget(name: "RTPTests", dependencies: ["RTP", "TestSupport"]),
        .testTarget(name: "SFUTests", dependencies: [
            "SFU", "SDP", "DTLS", "ICE", "RTP", "StreamHub", "Codecs", "TestSupport", .product(name: "NIOCore", package: "swift-nio"),
        ], resources: [.copy("Fixtures")]),
        .testTarget(name: "AudioTests", dependencies: ["Audio", "FLV", "Codecs", "TestSupport", .product(name: "NIOCore", package: "swift-nio")],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "DTLSTests", dependencies: ["DTLS", "TestSupport"]),
        .testTarget(name: "SRTPTests", dependencies: ["SRTP", "LibSRTP", "DTLS", "TestSupport"]),
        .testTarget(name: "ICETests", dependencies: ["ICE", "STUN", "TestSupport", .product(name: "NIOCore", package: "swift-nio")]),
        .testTarget(name: "MP4Tests", dependencies: ["MP4", "Codecs", "TestSupport", .product(name: "NIOCore", package: "swift-nio")]),
        .testTarget(name: "RTMPTests", dependencies: ["RTMP", "AMF0", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "RTMPBridgeTests", dependencies: ["RTMPBridge", "RTMP", "AMF0", "StreamHub", "TestSupport"]),
        .testTarget(name: "StreamHubTests", dependencies: ["StreamHub", "FLV"]),
        .testTarget(name: "SignalingTests", dependencies: ["Signaling", "Digest", "Locks", "TestSupport"]),
        .testTarget(name: "P2PTrackerTests", dependencies: ["P2PTracker", "TestSupport"]),
        .testTarget(name: "ServerTests", dependencies: [
            "Server", "RTMPBridge", "RTMP", "AMF0", "FLV", "STUN", "DTLS", "SRTP", "Audio", "P2PTracker", "Locks", "TestSupport",
            .product(name: "NIOPosix", package: "swift-nio"),
            "LoopbackWebSocket",
        ]),
    ]
)
