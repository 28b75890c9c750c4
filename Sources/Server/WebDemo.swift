import Foundation

/// Finds the `web-demo` folder when no `--web-root` is given: the server runs from its checkout
/// (`scripts/run.sh`, tests), so the folder is next to the working directory or above the executable
/// (`.build/release/liveswarm`).
enum WebDemo {
    static func find() -> String? {
        var candidates = [FileManager.default.currentDirectoryPath]
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
            for _ in 0..<5 {
                candidates.append(dir.path)
                dir = dir.deletingLastPathComponent()
            }
        }
        return candidates.map { URL(fileURLWithPath: $0).appendingPathComponent("web-demo").path }
            .first { FileManager.default.fileExists(atPath: "\($0)/live-http/index.html") }
    }
}
