// swift-tools-version:6.0
// LiveSwarm's fuzz targets (libFuzzer), apart from the server's package so that `-sanitize=fuzzer` never links
// libFuzzer's `main` into liveswarm or the bench. Build and run them with `scripts/fuzz.sh` (docs/RELIABILITY.md):
//   swift build --package-path Fuzz -c release --sanitize=fuzzer --sanitize=address
// Each target is an executable whose only entry point is `LLVMFuzzerTestOneInput` (`-parse-as-library`: libFuzzer
// brings `main`).
import Foundation
import PackageDescription

// A path dependency's identity is its directory's name, whatever the checkout is called.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
let parsers = Target.Dependency.product(name: "LiveSwarmParsers", package: root.lastPathComponent)

/// Target directory under Targets/ and what it parses.
let targets = ["STUN", "RTP", "RTCP", "SDP", "AMF0", "FLV", "AVC", "AAC", "RTMPChunks", "Tracker"]

let package = Package(
    name: "LiveSwarmFuzz",
    // swift-nio as the server's package has it (for ByteBuffer, which the codecs take).
    dependencies: [.package(path: ".."), .package(url: "https://github.com/apple/swift-nio", from: "2.101.2")],
    targets: targets.map { name in
        .executableTarget(name: "fuzz-\(name.lowercased())", dependencies: [parsers, .product(name: "NIOCore", package: "swift-nio")],
                          path: "Targets/\(name)", swiftSettings: [.unsafeFlags(["-parse-as-library"])])
    }
)
