import Foundation

/// Runs a real peer from /usr/bin to completion (ffmpeg, ffprobe). A missing tool is a failure that says how to
/// get it, never a skip.
public struct ToolFailure: Error, CustomStringConvertible {
    public var description: String
}

/// Runs `tool` with `arguments` and returns its exit status and its stdout and stderr together. A run longer than
/// `timeout` is killed (status 9, and the output says so): a hung peer fails its test instead of hanging the suite.
/// The output goes through a file, not a pipe, so children the tool leaves behind (Chromium's) cannot hold it open.
@discardableResult
public func runTool(_ tool: String, _ arguments: [String], timeout: Duration = .seconds(300)) throws -> (status: Int32, output: String) {
    let path = "/usr/bin/\(tool)"
    guard FileManager.default.isExecutableFile(atPath: path) else {
        throw ToolFailure(description: "\(tool) is not installed: run the README's test command, which installs it")
    }
    let outputURL = FileManager.default.temporaryDirectory.appendingPathComponent("liveswarm-tool-\(UUID().uuidString).log")
    guard FileManager.default.createFile(atPath: outputURL.path, contents: nil) else {
        throw ToolFailure(description: "cannot create \(outputURL.path) for \(tool)'s output")
    }
    defer { try? FileManager.default.removeItem(at: outputURL) }
    let output = try FileHandle(forWritingTo: outputURL)
    defer { try? output.close() }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = output
    process.standardError = output
    try process.run()
    let killer = DispatchWorkItem { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
    let (seconds, attoseconds) = timeout.components
    DispatchQueue.global().asyncAfter(deadline: .now() + Double(seconds) + Double(attoseconds) / 1e18, execute: killer)
    process.waitUntilExit()
    killer.cancel()
    var text = String(decoding: (try? Data(contentsOf: outputURL)) ?? Data(), as: UTF8.self)
    if process.terminationReason == .uncaughtSignal, process.terminationStatus == SIGKILL {
        text += "\n[\(tool) was killed after \(timeout)]"
    }
    return (process.terminationStatus, text)
}
