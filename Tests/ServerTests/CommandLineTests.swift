import Foundation
import NIOCore
import NIOPosix
import Testing
import TestSupport

/// The `liveswarm` binary as an operator runs it: starts on the flags given, answers, stops on a signal.
@Suite(.serialized, .timeLimit(.minutes(5))) struct CommandLineTests {
    static var binary: String {
        // The test bundle sits beside the products of the same build.
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("liveswarm").path
    }

    /// The server on free loopback ports; with `descriptors`, under that limit of open files (prlimit(1)); with
    /// `environment`, with those NAME=VALUE settings added (env(1)).
    func start(_ args: [String], descriptors: Int? = nil, environment: [String] = []) async throws -> (Tool, http: Int, rtmp: Int) {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else { throw TestFailure("no binary at \(Self.binary)") }
        let serve = ["serve", "--listen", "127.0.0.1", "--http-port", "0", "--rtmp-port", "0", "--stun-port", "0", "--rtc-port", "0"] + args
        let t = try descriptors.map { try Tool.executable("/usr/bin/prlimit", ["--nofile=\($0):\($0)", Self.binary] + serve) }
            ?? (environment.isEmpty ? Tool.executable(Self.binary, serve) : Tool.executable("/usr/bin/env", environment + [Self.binary] + serve))
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            // The ready line names both URLs: rtmp=rtmp://127.0.0.1:PORT/live/STREAM flv=http://127.0.0.1:PORT/...
            if let line = Self.readyLine(t),
               let rtmp = Self.port(after: "rtmp://127.0.0.1:", in: line),
               let http = Self.port(after: "http://127.0.0.1:", in: line) {
                return (t, http, rtmp)
            }
            if !t.isRunning { throw TestFailure("liveswarm exited: \(t.errorOutput) \(t.output)") }
            try await Task.sleep(for: .milliseconds(50))
        }
        t.kill()
        throw TestFailure("liveswarm did not say ready: \(t.output)")
    }

    /// The server's line saying it is ready, with every port it listens on.
    static func readyLine(_ t: Tool) -> String? {
        t.output.split(separator: "\n").first { $0.contains("ready") }.map(String.init)
    }

    /// The media port (UDP) and the STUN port (UDP) of a server `start` returned.
    static func mediaAndSTUNPorts(_ t: Tool) throws -> (media: Int, stun: Int) {
        let ready = try #require(readyLine(t))
        return (try #require(port(after: "media=udp ", in: ready)), try #require(port(after: "stun=stun:127.0.0.1:", in: ready)))
    }

    static func port(after prefix: String, in line: String) -> Int? {
        guard let r = line.range(of: prefix) else { return nil }
        return Int(line[r.upperBound...].prefix { $0.isNumber })
    }

    @Test(arguments: [SIGTERM, SIGINT])
    func servesAndShutsDownGracefullyOnSignal(signal: Int32) async throws {
        let (t, http, rtmp) = try await start([])
        let api = try await HTTPGet.fetch(port: http, "/api/v1/streams")
        #expect(api.status == 200)
        #expect(api.text.contains("\"streams\""))
        // A publisher and a viewer are connected when the signal arrives.
        let publisher = try await RTMPTestClient.connect(port: rtmp)
        #expect(try await publisher.publish("sig") == "NetStream.Publish.Start")
        try await publisher.sendVideo(from: 0, count: 30, config: true)
        let viewer = try await FLVTestClient.open(port: http, path: "/live/sig.flv")
        t.kill(signal)
        #expect(await t.wait(timeout: .seconds(10)) == 0, "exit status after signal \(signal): \(t.output.suffix(800))")
        #expect(await viewer.tcp.closesWithin(.seconds(2)))
        #expect(await publisher.tcp.closesWithin(.seconds(2)))
    }

    /// The server's CPU time so far (user and system), from /proc.
    static func cpuSeconds(pid: Int32) -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// A stream fed live by an RTMP publisher and watched over HTTP-FLV (10 tags in), for the fault tests.
    struct Watched {
        let publisher: RTMPTestClient
        let feeder: Task<Void, any Error>
        let viewer: FLVTestClient

        init(_ name: String, http: Int, rtmp: Int) async throws {
            publisher = try await RTMPTestClient.connect(port: rtmp)
            #expect(try await publisher.publish(name) == "NetStream.Publish.Start")
            feeder = try await publisher.feedVideo(gop: 25)
            viewer = try await FLVTestClient.open(port: http, path: "/live/\(name).flv")
            #expect(try await viewer.read(until: { $0.tags.count >= 10 }, timeout: .seconds(5)))
        }

        func close() async {
            feeder.cancel()
            await viewer.close()
            await publisher.tcp.close()
        }
    }

    /// Out of file descriptors (the server under a limit of 256, then 300 connections to its HTTP port): accepting
    /// pauses instead of spinning (it took a whole core, 6,500 failed accepts a second), the connections it cannot
    /// take are refused rather than left waiting, the stream already being watched keeps flowing, the operator is
    /// told once, and once the connections close new ones are served.
    @Test func outOfDescriptorsAcceptsPauseAndTheWatchedStreamFlows() async throws {
        let (t, http, rtmp) = try await start([], descriptors: 256)
        defer { t.kill() }
        let watched = try await Watched("fd", http: http, rtmp: rtmp)
        let viewer = watched.viewer
        let baseline = Self.descriptors(pid: t.process.processIdentifier)

        // A connection the server refuses may be reset before the connect is done: that one counts as refused.
        var flood: [TCPTestClient] = []
        var resetAtOnce = 0
        for _ in 0..<300 {
            do { flood.append(try await TCPTestClient.connect(port: http)) } catch { resetAtOnce += 1 }
        }
        try await Task.sleep(for: .seconds(1))
        let before = try #require(Self.cpuSeconds(pid: t.process.processIdentifier))
        let seen = viewer.tags.count
        let flowed = try await viewer.read(until: { $0.tags.count >= seen + 25 }, timeout: .seconds(3))
        try await Task.sleep(for: .seconds(2))
        let cpu = try #require(Self.cpuSeconds(pid: t.process.processIdentifier)) - before
        print("out of descriptors: \(String(format: "%.2f", cpu)) s of CPU over about 3 s; the viewer got \(viewer.tags.count - seen) tags")
        #expect(cpu < 0.75, "accepting spins: \(cpu) s of CPU in about 3 s")
        #expect(flowed, "the watched stream kept flowing: \(viewer.tags.count - seen) tags")
        #expect(t.output.contains("HTTP: cannot accept connections") || t.errorOutput.contains("HTTP: cannot accept connections"),
                "the operator is told")
        // What the server could not take was refused, not left waiting: those connections were reset, and one made
        // now is too.
        var refused = resetAtOnce
        for c in flood where !c.channel.isActive { refused += 1 }
        if let late = try? await TCPTestClient.connect(port: http) {
            #expect(await late.closesWithin(.seconds(2)), "a connection made while out of descriptors is refused")
        }
        print("out of descriptors: \(refused) of the 300 connections refused")
        #expect(refused > 0, "the connections the server could not take were refused")

        for c in flood { await c.close() }
        try await TestServer.waitUntil("a new request to be served", timeout: .seconds(10)) {
            (try? await HTTPGet.fetch(port: http, "/api/v1/streams").status) == 200
        }
        // Nothing leaks: every descriptor the flood took is given back.
        try await TestServer.waitUntil("the flood's descriptors to be given back", timeout: .seconds(10)) {
            Self.descriptors(pid: t.process.processIdentifier) <= baseline
        }
        await watched.close()
    }

    /// Open descriptors of a process.
    static func descriptors(pid: Int32) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    /// Viewers killed with SIGKILL (ffmpeg over RTMP and HTTP-FLV: no goodbye, the kernel closes their sockets):
    /// the server lets go of every one of them (its descriptors back to what they were, the stream's viewer list back
    /// to the one left) and the viewer left watching keeps getting frames.
    @Test func viewersKilledWithSIGKILLLeaveNothingBehind() async throws {
        let (t, http, rtmp) = try await start([])
        defer { t.kill() }
        let pid = t.process.processIdentifier
        let watched = try await Watched("kill", http: http, rtmp: rtmp)
        let viewer = watched.viewer
        func viewers() async throws -> Int {
            let r = try await HTTPGet.fetch(port: http, "/api/v1/streams/live/kill")
            return (try JSONSerialization.jsonObject(with: r.body) as? [String: Any])?["viewers"].flatMap { $0 as? [Any] }?.count ?? -1
        }
        try await TestServer.waitUntil("one viewer", timeout: .seconds(5)) { try await viewers() == 1 }
        let baseline = Self.descriptors(pid: pid)

        let urls = ["rtmp://127.0.0.1:\(rtmp)/live/kill", "http://127.0.0.1:\(http)/live/kill.flv"]
        let killed = try (urls + urls + urls).map {
            try Tool("ffmpeg", ["-hide_banner", "-loglevel", "error", "-i", $0, "-c", "copy", "-f", "null", "-"])
        }
        try await TestServer.waitUntil("the ffmpeg viewers to be watching", timeout: .seconds(20)) { try await viewers() == 7 }
        let watching = Self.descriptors(pid: pid)
        for k in killed { k.kill(SIGKILL) }
        for k in killed { _ = await k.wait(timeout: .seconds(5)) }
        try await TestServer.waitUntil("the killed viewers to be let go", timeout: .seconds(15)) {
            try await viewers() == 1 && Self.descriptors(pid: pid) <= baseline
        }
        print("killed viewers: the server had \(baseline) descriptors, \(watching) with 6 more viewers, \(Self.descriptors(pid: pid)) after SIGKILL")
        let before = viewer.tags.count
        #expect(try await viewer.read(until: { $0.tags.count >= before + 25 }, timeout: .seconds(3)), "the viewer left keeps watching")
        await watched.close()
    }

    /// The server stopped with SIGSTOP for 10 s (a VM paused, a debugger), then SIGCONT: every timer that came due
    /// meanwhile fires at once, but the publisher whose frames waited in the socket is not taken for gone, the
    /// viewer watching gets frames again, and the server answers.
    @Test func stoppedTenSecondsTheServerCarriesOn() async throws {
        let (t, http, rtmp) = try await start([])
        defer { t.kill() }
        let pid = t.process.processIdentifier
        let watched = try await Watched("pause", http: http, rtmp: rtmp)
        let viewer = watched.viewer
        let baseline = Self.descriptors(pid: pid)
        kill(pid, SIGSTOP)
        try await Task.sleep(for: .seconds(10))
        let before = viewer.tags.count
        kill(pid, SIGCONT)
        #expect(try await viewer.read(until: { $0.tags.count >= before + 50 }, timeout: .seconds(10)),
                "the viewer gets frames again: \(viewer.tags.count - before)")
        #expect(try await HTTPGet.fetch(port: http, "/api/v1/streams").text.contains("\"published\":true"), "the stream is still published")
        #expect(t.isRunning)
        // The API request's connection closes a moment after its answer.
        try await TestServer.waitUntil("the descriptors of before the stop", timeout: .seconds(5)) { Self.descriptors(pid: pid) <= baseline }
        await watched.close()
    }

    @Test func rejectsBadFlagsClearly() async throws {
        for (args, message) in [(["serve", "--http-port", "99999"], "--http-port must be 0-65535"),
                                (["serve", "--rtc-port", "65536"], "--rtc-port must be 0-65535"),
                                (["serve", "--config", "/nonexistent.yaml"], "cannot read config file"),
                                (["serve", "--log-level", "loud"], "is not a level")] {
            let t = try Tool.executable(Self.binary, args)
            #expect(await t.wait(timeout: .seconds(10)) != 0)
            #expect(t.errorOutput.contains(message), "\(args): \(t.errorOutput)")
        }
    }

    /// A port already in use stops the server with an error that names the service and the address.
    @Test func aPortInUseIsNamed() async throws {
        let holder = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = holder.localAddress?.port ?? 0
        for (flag, label) in [("--http-port", "HTTP (TCP 127.0.0.1:\(port))"), ("--rtmp-port", "RTMP (TCP 127.0.0.1:\(port))"),
                              ("--rtc-port", "the WebRTC media port (UDP and TCP 127.0.0.1:\(port))")] {
            var args = ["serve", "--listen", "127.0.0.1", "--http-port", "0", "--rtmp-port", "0", "--stun-port", "0", "--rtc-port", "0"]
            args[args.firstIndex(of: flag)! + 1] = String(port)
            let t = try Tool.executable(Self.binary, args)
            #expect(await t.wait(timeout: .seconds(20)) != 0)
            #expect(t.errorOutput.contains("\(label) stopped: ") && t.errorOutput.contains("Address already in use"),
                    "\(flag): \(t.errorOutput.suffix(600))")
        }
        try await holder.close()
    }

    /// With `--rtc-port 0` the media port binds UDP where the OS says and TCP on the same number. When that number is
    /// taken for TCP the server tries another, and when none is free it exits with a clear error instead of hanging
    /// (a test server once waited forever for ports it never got). A namespace of its own gives the test a port
    /// range of two numbers, then one, with TCP 40000 held by a listener.
    @Test func ephemeralMediaPortSkipsANumberTakenForTCP() async throws {
        for range in ["40000 40001", "40000 40000"] {
            let ns = try await NetworkNamespace.isolated()
            var tools: [Tool] = []
            do {
                _ = try await Tool.run("ip", ["netns", "exec", ns.name, "sh", "-c", "echo \(range) > /proc/sys/net/ipv4/ip_local_port_range"])
                let holder = try ns.python(["-c", """
                    import socket, time
                    s = socket.socket(); s.bind(("127.0.0.1", 40000)); s.listen()
                    print("listening", flush=True); time.sleep(60)
                    """])
                tools.append(holder)
                try await TestServer.waitUntil("the TCP 40000 holder", timeout: .seconds(10)) { holder.output.contains("listening") }
                let server = try ns.tool(Self.binary, ["serve", "--listen", "127.0.0.1", "--http-port", "8080", "--rtmp-port", "1935",
                                                        "--stun-port", "3478", "--rtc-port", "0", "--log-level", "info"])
                tools.append(server)
                if range == "40000 40001" {
                    try await TestServer.waitUntil("liveswarm to be ready", timeout: .seconds(20)) {
                        server.output.contains("ready") || !server.isRunning
                    }
                    let line = server.output.split(separator: "\n").first { $0.contains("media port listening") }.map(String.init) ?? ""
                    #expect(line.contains("udp=40001") && line.contains("tcp=40001"), "\(server.output.suffix(1500)) \(server.errorOutput)")
                } else {
                    let status = await server.wait(timeout: .seconds(20))
                    #expect(status != 0)
                    #expect((server.output + server.errorOutput).contains("no port number was free for both UDP and TCP after 16 tries"),
                            "\(server.output.suffix(1500)) \(server.errorOutput)")
                }
            } catch {
                Issue.record(error)
            }
            for t in tools { t.kill() }
            for t in tools { await t.wait(timeout: .seconds(5)) }
            await ns.remove()
        }
    }

    @Test func logsCarryTheConnectionID() async throws {
        let (t, _, rtmp) = try await start(["--log-level", "info"])
        defer { t.kill() }
        let publisher = try await RTMPTestClient.connect(port: rtmp)
        #expect(try await publisher.publish("logged") == "NetStream.Publish.Start")
        await publisher.tcp.close()
        try await Task.sleep(for: .milliseconds(300))
        let lines = t.output.split(separator: "\n").filter { $0.contains("live/logged") }
        #expect(!lines.isEmpty)
        #expect(lines.filter { $0.contains("closing") || $0.contains("publish ended") && $0.contains("reason") }.allSatisfy { $0.contains("conn=rtmp-") },
                "\(lines)")
    }

    /// `liveswarm token` mints what `serve --room-secret` admits, and names what is wrong with its flags.
    @Test func tokenCommandMintsWhatTheServerAdmits() async throws {
        let mint = try Tool.executable(Self.binary, ["token", "--room", "standup", "--identity", "ann", "--ttl", "10m",
                                                     "--no-publish", "--secret", "s3cret"])
        #expect(await mint.wait(timeout: .seconds(20)) == 0, "\(mint.errorOutput)")
        let token = mint.output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(token.split(separator: ".").count == 3, "\(token)")
        for (flags, says) in [(["--room", "standup", "--identity", "ann"], "--secret"),
                              (["--room", "standup", "--identity", "ann", "--secret", "s", "--ttl", "5x"], "--ttl"),
                              (["--room", "no/slash", "--identity", "ann", "--secret", "s"], "--room")] {
            let t = try Tool.executable(Self.binary, ["token"] + flags)
            #expect(await t.wait(timeout: .seconds(20)) != 0)
            #expect(t.errorOutput.contains(says), "\(flags): \(t.errorOutput)")
        }

        let (server, http, _) = try await start(["--room-secret", "s3cret"])
        defer { server.kill() }
        func join(_ token: String?) async throws -> [String: Any] {
            let c = try await WebSocketTestClient.connect(port: http, path: "/ws")
            defer { c.close() }
            var msg: [String: Any] = ["type": "join", "version": 1, "room": "standup", "name": ""]
            if let token { msg["token"] = token }
            c.send(RoomEndpointTests.json(msg))
            return try RoomEndpointTests.object(try await c.text())
        }
        let joined = try await join(token)
        #expect(joined["type"] as? String == "joined", "\(joined)")
        let you = joined["you"] as? [String: Any]
        #expect(you?["name"] as? String == "ann" && you?["canPublish"] as? Bool == false, "\(joined)")
        #expect(try await join(nil)["code"] as? String == "tokenRequired")
    }
}
