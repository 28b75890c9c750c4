import Foundation

/// Runs a real peer from /usr/bin to completion (ffmpeg, ffprobe). A missing tool is a failure that says how to
/// get it, never a skip.
public struct ToolFailure: Error, CustomStringConvertible {
    public var description: String
}

@discardableResult
public func runTool(_ tool: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let path = "/usr/bin/\(tool)"
    guard FileManager.default.isExecutableFile(atPath: path) else {
        throw ToolFailure(description: "\(tool) is not installed: run the README's test command, which installs it")
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    process.standardInput = FileHandle.nullDevice
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}
