// swift-tools-version:6.0
// LiveSwarm's fuzz targets (libFuzzer), apart from the server's package so that `-sanitize=fuzzer` never links
// libFuzzer's `main` into liveswarm or the bench. Build and run them with `scripts/fuzz.sh` (docs/RELIABILITY.md):
//   swift build --package-path Fuzz -c release --sanitize=fuzzer --sanitize=address -Xswiftc -enable-testing
// Each target is an executable whose only entry point is `LLVMFuzzerTestOneInput` (`-parse-as-library`: libFuzzer
// brings `main`). `-enable-testing` lets the targets of services reach internal parsers with `@testable import`, as
// the unit tests do, instead of widening the server's API for them.
import Foundation
import PackageDescription

// A path dependency's identity is its directory's name, whatever the checkout is called.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
let parsers = Target.Dependency.product(name: "LiveSwarmParsers", package: root.lastPathComponent)
let services = Target.Dependency.product(name: "LiveSwarmServices", package: root.lastPathComponent)

/// Target directories under Targets/: the wire codecs (LiveSwarmParsers), then the services' parsers.
let targets = ["STUN", "RTP", "RTCP", "SDP", "AMF0", "FLV", "AVC", "AAC", "RTMPChunks", "Tracker", "H264", "RTMPHandshake",
               "TURNTCP", "ICETCP", "ICELite", "STUNFastPath", "Offer", "HLSParams", "RoomMessages", "Tokens", "P2PReports",
               "Config", "RoomService", "RTMPSession", "TURNAllocations", "SRTP"]
let needsServices: Set = ["TURNTCP", "ICETCP", "ICELite", "STUNFastPath", "Offer", "HLSParams", "RoomMessages", "Tokens",
                          "P2PReports", "Config", "RoomService", "RTMPSession", "TURNAllocations"]

let package = Package(
    name: "LiveSwarmFuzz",
    // swift-nio as the server's package has it (for ByteBuffer, which the codecs take, and EmbeddedChannel, which
    // drives the TCP framers as a connection would).
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
    ],
    targets: [.target(name: "FuzzSupport", path: "Support")] + targets.map { name in
        var dependencies: [Target.Dependency] = ["FuzzSupport", parsers, .product(name: "NIOCore", package: "swift-nio")]
        if needsServices.contains(name) {
            dependencies += [services, .product(name: "NIOEmbedded", package: "swift-nio"),
                             .product(name: "Hummingbird", package: "hummingbird"), .product(name: "HummingbirdCore", package: "hummingbird"),
                             .product(name: "HTTPTypes", package: "swift-http-types"),
                             .product(name: "Logging", package: "swift-log"), .product(name: "Metrics", package: "swift-metrics")]
        }
        return .executableTarget(name: "fuzz-\(name.lowercased())", dependencies: dependencies, path: "Targets/\(name)",
                                 swiftSettings: [.unsafeFlags(["-parse-as-library"])])
    }
)
