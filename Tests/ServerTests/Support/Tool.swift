import Foundation
import TestSupport

/// A real peer (ffmpeg, ffprobe) run as a child process.
final class Tool: @unchecked Sendable {
    let process = Process()
    let stdout = Pipe()
    let stderr = Pipe()
    private let lock = NSLock()
    private var out = Data()
    private var err = Data()

    convenience init(_ executable: String, _ arguments: [String]) throws {
        let path = ["/usr/bin/\(executable)", "/usr/sbin/\(executable)", "/usr/local/bin/\(executable)"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let path else { throw TestFailure("\(executable) is not installed: run the README's test command, which installs it") }
        try self.init(path: path, arguments)
    }

    static func executable(_ path: String, _ arguments: [String]) throws -> Tool { try Tool(path: path, arguments) }

    /// The Python that has Selenium and aiortc: `LIVESWARM_PYTHON` (set by scripts/test.sh to its virtualenv),
    /// else `python3` on PATH. As a command line, for running it elsewhere too (inside a network namespace).
    static var pythonCommand: [String] {
        if let p = ProcessInfo.processInfo.environment["LIVESWARM_PYTHON"], !p.isEmpty { return [p] }
        return ["/usr/bin/env", "python3"]
    }

    static func python(_ arguments: [String]) throws -> Tool {
        let command = pythonCommand
        return try Tool(path: command[0], Array(command.dropFirst()) + arguments)
    }

    static let checkout = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../..").standardized

    /// The arguments of `Tests/Browser/drive.py` for a page run of `seconds`, ending with `statsJS`'s JSON on stdout.
    static func driveArguments(url: String, seconds: Int, statsJS: String, scripts: [String] = [], flags: [String] = [],
                               sampleEvery: Int = 0) -> [String] {
        [checkout.appendingPathComponent("Tests/Browser/drive.py").path, "--url", url, "--seconds", String(seconds),
         "--sample-every", String(sampleEvery), "--stats-js", statsJS]
            + scripts.flatMap { ["--script-at", $0] } + flags.map { "--flag=\($0)" }
    }

    /// Headless Chromium on a page, through drive.py.
    static func drive(url: String, seconds: Int, statsJS: String, scripts: [String] = [], flags: [String] = [],
                      sampleEvery: Int = 0) throws -> Tool {
        try python(driveArguments(url: url, seconds: seconds, statsJS: statsJS, scripts: scripts, flags: flags, sampleEvery: sampleEvery))
    }

    /// Waits (up to `timeout`) and decodes the last line of stdout as JSON; throws with stderr when the tool failed.
    func jsonResult<T: Decodable>(_ type: T.Type, timeout: Duration) async throws -> T {
        let status = await wait(timeout: timeout)
        let name = process.arguments?.first { $0.hasSuffix(".py") }.map { URL(fileURLWithPath: $0).lastPathComponent } ?? "tool"
        guard status == 0, let line = output.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").last else {
            throw TestFailure("\(name) exited \(status): \(errorOutput.suffix(3000))")
        }
        return try JSONDecoder().decode(T.self, from: Data(line.utf8))
    }

    init(path: String, _ arguments: [String], input: Pipe? = nil) throws {
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = input ?? FileHandle.nullDevice
        stdout.fileHandleForReading.readabilityHandler = { [weak self] h in
            let d = h.availableData
            self?.lock.withLock { self?.out.append(d) }
        }
        stderr.fileHandleForReading.readabilityHandler = { [weak self] h in
            let d = h.availableData
            self?.lock.withLock { self?.err.append(d) }
        }
        try process.run()
    }

    /// A tool the test let go of without waiting for it (`defer { t.kill() }`, or one left to end by itself) is
    /// reaped when it exits: Foundation's `Process` holds itself through its run-loop source until `waitUntilExit`
    /// lets go of it, so a process never waited for is never freed (LeakSanitizer found fifteen). It is not killed
    /// here: a driver killed outright leaves its Chromium running (a first version did, and starved a CI run).
    deinit {
        let reaper = Reaper(process: process)
        if process.isRunning {
            Thread { reaper.process.waitUntilExit() }.start()
        } else {
            process.waitUntilExit()
        }
    }

    private struct Reaper: @unchecked Sendable { let process: Process }

    var output: String { lock.withLock { String(decoding: out, as: UTF8.self) } }
    var errorOutput: String { lock.withLock { String(decoding: err, as: UTF8.self) } }
    var isRunning: Bool { process.isRunning }

    /// Waits for exit, killing the process after `timeout`. Returns the exit status.
    @discardableResult
    func wait(timeout: Duration = .seconds(60)) async -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        if process.isRunning { kill(SIGKILL) }
        process.waitUntilExit()
        try? await Task.sleep(for: .milliseconds(50))  // let the pipes drain
        return process.terminationStatus
    }

    func kill(_ signal: Int32 = SIGKILL) {
        if process.isRunning { Foundation.kill(process.processIdentifier, signal) }
    }

    /// Runs to completion and returns stdout; throws with stderr if the exit status is not 0.
    static func run(_ executable: String, _ arguments: [String], timeout: Duration = .seconds(60)) async throws -> String {
        let t = try Tool(executable, arguments)
        let status = await t.wait(timeout: timeout)
        guard status == 0 else {
            throw TestFailure("\(executable) \(arguments.joined(separator: " ")) exited \(status): \(t.errorOutput.suffix(2000))")
        }
        return t.output
    }

    /// An ffmpeg publisher of a lavfi test pattern and a 440 Hz tone, as in INTEROP.md.
    static func publisher(url: String, seconds: Double?, gop: Int = 30, size: String = "640x360", fps: Int = 30,
                          extra: [String] = []) throws -> Tool {
        var args = ["-hide_banner", "-loglevel", "error", "-re",
                    "-f", "lavfi", "-i", "testsrc2=size=\(size):rate=\(fps)",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]
        if let seconds { args += ["-t", String(seconds)] }
        args += ["-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", String(gop),
                 "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k"] + extra + ["-f", "flv", url]
        return try Tool("ffmpeg", args)
    }
}

/// A tool that answers each JSON line on its stdin with one on its stdout (`Tests/Browser/pages.py`): the test
/// decides its next step from the last answer.
final class Conversation: @unchecked Sendable {
    let input = Pipe()
    let tool: Tool
    private var answered = 0

    /// The Python script `script` of Tests/Browser with `arguments`; waits for its first line (ready).
    init(script: String, _ arguments: [String], timeout: Duration = .seconds(60)) async throws {
        let command = Tool.pythonCommand
        tool = try Tool(path: command[0], Array(command.dropFirst())
                        + [Tool.checkout.appendingPathComponent("Tests/Browser/\(script)").path] + arguments, input: input)
        _ = try await next(timeout: timeout)
    }

    /// Sends `command` and returns the answer; an answer with "error" throws, with the tool's stderr.
    @discardableResult
    func ask(_ command: [String: Any], timeout: Duration = .seconds(60)) async throws -> [String: Any] {
        let line = try JSONSerialization.data(withJSONObject: command) + Data("\n".utf8)
        try input.fileHandleForWriting.write(contentsOf: line)
        let answer = try await next(timeout: timeout)
        if let error = answer["error"] { throw TestFailure("\(command["cmd"] ?? "?"): \(error)\n\(tool.errorOutput.suffix(3000))") }
        return answer
    }

    /// `js` run in page `page`; its result.
    func eval(_ page: Int, _ js: String, timeout: Duration = .seconds(60)) async throws -> Any? {
        try await ask(["cmd": "eval", "page": page, "js": js], timeout: timeout)["result"]
    }

    private func next(timeout: Duration) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let lines = tool.output.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
            if lines.count > answered {
                let line = lines[lines.startIndex + answered]
                answered += 1
                guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                    throw TestFailure("not a JSON object: \(line)")
                }
                return object
            }
            guard tool.isRunning else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("no answer within \(timeout)\(tool.isRunning ? "" : " (it exited)"): \(tool.errorOutput.suffix(3000))")
    }

    /// Asks it to quit, and waits.
    func quit() async {
        _ = try? await ask(["cmd": "quit"], timeout: .seconds(10))
        await tool.wait(timeout: .seconds(30))
    }
}

/// What ffprobe says about a stream or file.
struct Probe: Decodable {
    struct Stream: Decodable {
        var codec_type: String
        var codec_name: String
        var width: Int?
        var height: Int?
        var sample_rate: String?
        var channels: Int?
        var profile: String?
    }
    struct Format: Decodable {
        var duration: String?
        var format_name: String
    }
    var streams: [Stream]
    var format: Format?

    var video: Stream? { streams.first { $0.codec_type == "video" } }
    var audio: Stream? { streams.first { $0.codec_type == "audio" } }
    var duration: Double? { format?.duration.flatMap(Double.init) }

    static func run(_ input: String, extra: [String] = []) async throws -> Probe {
        let json = try await Tool.run("ffprobe", ["-v", "error", "-print_format", "json", "-show_streams", "-show_format"]
                                      + extra + [input], timeout: .seconds(30))
        return try JSONDecoder().decode(Probe.self, from: Data(json.utf8))
    }
}
