import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import Locks

/// Low-latency HLS load: N clients follow one stream the way an LL-HLS player does (blocking playlist reload
/// for the next part, then the part), then C more connections fetch playlists and parts as fast as they can
/// while those N stay blocked. Reports requests per second, the server's CPU, how long after the first client
/// the others are released for the same part, and the memory each stream's HLS window costs.
struct HLSLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "hls")

    @Option(help: "Server host.") var host = "127.0.0.1"
    @Option(help: "Server RTMP port.") var rtmpPort = 1935
    @Option(help: "Server HTTP port.") var httpPort = 8080
    @Option(help: "Server process id, for CPU and memory (from /proc).") var pid: Int32
    @Option(help: "Blocking-reload client counts to measure, one after another.") var clients: [Int] = [100]
    @Option(help: "Connections fetching without blocking, added to each client count.") var hammer = 16
    @Option(help: "Seconds of measurement per phase.") var seconds = 15
    @Option(help: "Stream bitrate in bits per second.") var bitrate = 2_000_000
    @Option(help: "Streams published for the memory measurement (0: skip it).") var memoryStreams = 8
    @Option(help: "Seconds the memory streams run before measuring (the window must be full).") var fillSeconds = 30

    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let epoch = ContinuousClock.now
        try await measureMemory(group: group, epoch: epoch)
        let publisher = try await SyntheticPublisher.start(group: group, host: host, port: rtmpPort, stream: "hls",
                                                           bitrate: bitrate, fps: 30, gop: 30, epoch: epoch)
        try await Task.sleep(for: .seconds(4))
        print("| blocking clients | phase | playlist req/s | part req/s | MB/s sent | server CPU (% of a core) | CPU per client (% of a core) | release after first client p50 / p99 / max (ms) | server RSS (MiB) | load generator CPU (% of a core) |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for n in clients {
            let stats = LoadStats()
            var followers: [Task<Void, Never>] = []
            let stop = StopFlag()
            for _ in 0..<n {
                let conn = try await HTTPConnection.open(group: group, host: host, port: httpPort)
                followers.append(Task { await follow(conn, stats: stats, stop: stop, epoch: epoch) })
            }
            try await Task.sleep(for: .seconds(3))
            stats.reset()
            var before = ProcStats.read(pid: pid)
            var selfBefore = ProcStats.read(pid: getpid())
            try await Task.sleep(for: .seconds(seconds))
            var after = ProcStats.read(pid: pid)
            report(n, "follow", stats.take(), before, after, perClient: true, load: ProcStats.read(pid: getpid()).cpuPercent(since: selfBefore))

            // The same N keep following; C connections fetch the newest part and the playlist back to back.
            var hammers: [Task<Void, Never>] = []
            for _ in 0..<hammer {
                let conn = try await HTTPConnection.open(group: group, host: host, port: httpPort)
                hammers.append(Task { await pound(conn, stats: stats, stop: stop) })
            }
            try await Task.sleep(for: .seconds(2))
            stats.reset()
            before = ProcStats.read(pid: pid)
            selfBefore = ProcStats.read(pid: getpid())
            try await Task.sleep(for: .seconds(seconds))
            after = ProcStats.read(pid: pid)
            report(n, "+\(hammer) fetching flat out", stats.take(), before, after, perClient: false,
                   load: ProcStats.read(pid: getpid()).cpuPercent(since: selfBefore))
            stop.set()
            for t in followers + hammers { await t.value }
            try await Task.sleep(for: .seconds(2))
        }
        publisher.stop()
        try await group.shutdownGracefully()
    }

    func report(_ n: Int, _ phase: String, _ s: LoadStats.Snapshot, _ before: ProcStats, _ after: ProcStats, perClient: Bool,
                load: Double) {
        let cpu = after.cpuPercent(since: before)
        let span = Double(seconds)
        let r = s.releases.sorted()
        func pct(_ p: Double) -> String { r.isEmpty ? "-" : String(format: "%.1f", r[min(r.count - 1, Int(Double(r.count) * p))]) }
        let release = r.isEmpty ? "-" : "\(pct(0.5)) / \(pct(0.99)) / \(String(format: "%.1f", r.last!))"
        print("| \(n) | \(phase) | \(Int(Double(s.playlists) / span)) | \(Int(Double(s.parts) / span)) | "
              + "\(String(format: "%.1f", Double(s.bytes) / span / 1e6)) | \(String(format: "%.1f", cpu)) | "
              + "\(perClient ? String(format: "%.3f", cpu / Double(max(1, n))) : "") | \(release) | \(String(format: "%.1f", after.rssMiB)) | "
              + "\(String(format: "%.0f", load)) |"
              + (s.errors > 0 ? " \(s.errors) errors" : ""))
    }

    /// What an LL-HLS player does: block on the playlist for the part after the last one it has, then get it.
    func follow(_ conn: HTTPConnection, stats: LoadStats, stop: StopFlag, epoch: ContinuousClock.Instant) async {
        var cursor: (Int, Int)?
        while !stop.isSet {
            let query = cursor.map { "?_HLS_msn=\($0.0)&_HLS_part=\($0.1)" } ?? ""
            guard let playlist = try? await conn.get("/live/hls/index.m3u8\(query)"), playlist.status == 200 else {
                stats.error()
                cursor = nil
                try? await Task.sleep(for: .milliseconds(200))
                continue
            }
            if let c = cursor { stats.released("\(c.0).\(c.1)", at: millis(since: epoch)) }
            stats.playlist(bytes: playlist.body.readableBytes)
            guard let last = Self.lastPart(in: playlist.body) else { continue }
            guard let part = try? await conn.get("/live/hls/part-\(last.0).\(last.1).m4s"), part.status == 200 else {
                stats.error()
                continue
            }
            stats.part(bytes: part.body.readableBytes)
            cursor = (last.0, last.1 + 1)
        }
        conn.close()
    }

    /// Fetches the newest part and the playlist back to back, without blocking.
    func pound(_ conn: HTTPConnection, stats: LoadStats, stop: StopFlag) async {
        while !stop.isSet {
            guard let playlist = try? await conn.get("/live/hls/index.m3u8"), playlist.status == 200,
                  let last = Self.lastPart(in: playlist.body) else { stats.error(); continue }
            stats.playlist(bytes: playlist.body.readableBytes)
            guard let part = try? await conn.get("/live/hls/part-\(last.0).\(last.1).m4s"), part.status == 200 else {
                stats.error()
                continue
            }
            stats.part(bytes: part.body.readableBytes)
        }
        conn.close()
    }

    /// The last part the playlist lists (EXT-X-PART, not the preload hint, which does not exist yet).
    static func lastPart(in body: ByteBuffer) -> (Int, Int)? {
        let text = String(buffer: body)
        guard let tag = text.range(of: "#EXT-X-PART:", options: .backwards),
              let r = text[tag.upperBound...].range(of: "URI=\"part-") else { return nil }
        let rest = text[r.upperBound...]
        guard let end = rest.range(of: ".m4s") else { return nil }
        let nums = rest[..<end.lowerBound].split(separator: ".")
        guard nums.count == 2, let m = Int(nums[0]), let p = Int(nums[1]) else { return nil }
        return (m, p)
    }

    /// Publishes `memoryStreams` streams, lets their windows fill, and reads the server's RSS and its own count
    /// of the bytes the HLS windows hold.
    func measureMemory(group: any EventLoopGroup, epoch: ContinuousClock.Instant) async throws {
        guard memoryStreams > 0 else { return }
        try await Task.sleep(for: .seconds(1))
        let before = ProcStats.read(pid: pid)
        var publishers: [SyntheticPublisher] = []
        for i in 0..<memoryStreams {
            publishers.append(try await SyntheticPublisher.start(group: group, host: host, port: rtmpPort, stream: "mem\(i)",
                                                                 bitrate: bitrate, fps: 30, gop: 30, epoch: epoch))
        }
        try await Task.sleep(for: .seconds(fillSeconds))
        let after = ProcStats.read(pid: pid)
        let conn = try await HTTPConnection.open(group: group, host: host, port: httpPort)
        let metrics = try await conn.get("/metrics")
        conn.close()
        let held = String(buffer: metrics.body).split(separator: "\n")
            .first { $0.hasPrefix("liveswarm_hls_bytes ") }.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
        print("HLS memory, \(memoryStreams) streams at \(bitrate / 1000) kbit/s after \(fillSeconds) s: RSS +"
              + String(format: "%.1f MiB (%.1f MiB per stream); the windows hold %.1f MiB (%.1f MiB per stream)",
                       after.rssMiB - before.rssMiB, (after.rssMiB - before.rssMiB) / Double(memoryStreams),
                       held / 1_048_576, held / 1_048_576 / Double(memoryStreams)))
        print("")
        for p in publishers { p.stop() }
        try await Task.sleep(for: .seconds(2))
    }
}

final class StopFlag: Sendable {
    let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .relaxed) }
    func set() { flag.store(true, ordering: .relaxed) }
}

/// Counters shared by the load's clients.
final class LoadStats: Sendable {
    struct Snapshot {
        var playlists = 0
        var parts = 0
        var bytes = 0
        var errors = 0
        /// Per blocked request: ms after the first client waiting for the same part was released.
        var releases: [Double] = []
        var firstRelease: [String: Double] = [:]
    }

    let state = Mutex(Snapshot())

    func reset() { state.withLock { $0 = Snapshot() } }
    func take() -> Snapshot { state.withLock { $0 } }
    func playlist(bytes: Int) { state.withLock { $0.playlists += 1; $0.bytes += bytes } }
    func part(bytes: Int) { state.withLock { $0.parts += 1; $0.bytes += bytes } }
    func error() { state.withLock { $0.errors += 1 } }

    func released(_ key: String, at now: Double) {
        state.withLock { s in
            if let first = s.firstRelease[key] {
                s.releases.append(now - first)
            } else {
                s.firstRelease[key] = now
                s.releases.append(0)
            }
        }
    }
}

/// A keep-alive HTTP/1.1 connection with one request at a time; responses need a Content-Length (the server's
/// playlists and media have one).
final class HTTPConnection: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer

    struct Response: Sendable {
        var status: Int
        var headers: [String: String] = [:]  // names in lower case
        var body: ByteBuffer
    }

    struct State {
        var input = ByteBuffer()
        var pending: EventLoopPromise<Response>?
    }

    let state = Mutex(State())
    let channel = Mutex<(any Channel)?>(nil)

    static func open(group: any EventLoopGroup, host: String, port: Int) async throws -> HTTPConnection {
        let conn = HTTPConnection()
        let ch = try await ClientBootstrap(group: group)
            .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(conn) } }
            .connect(host: host, port: port).get()
        conn.channel.withLock { $0 = ch }
        return conn
    }

    struct Closed: Error {}

    func get(_ path: String) async throws -> Response { try await request("GET", path) }

    func request(_ method: String, _ path: String, contentType: String? = nil, body: String? = nil) async throws -> Response {
        guard let ch = channel.withLock({ $0 }) else { throw Closed() }
        let promise = ch.eventLoop.makePromise(of: Response.self)
        state.withLock { $0.pending = promise }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: bench\r\n"
        if let contentType { head += "Content-Type: \(contentType)\r\n" }
        if let body { head += "Content-Length: \(body.utf8.count)\r\n" }
        ch.writeAndFlush(ByteBuffer(string: head + "\r\n" + (body ?? ""))).whenFailure { promise.fail($0) }
        return try await promise.futureResult.get()
    }

    func close() { channel.withLock { $0?.close(promise: nil) } }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        let done: (EventLoopPromise<Response>, Response)? = state.withLock { s in
            s.input.writeBuffer(&bytes)
            let view = s.input.readableBytesView
            guard let end = view.firstRange(of: [13, 10, 13, 10]) else { return nil }
            let headerLength = view.distance(from: view.startIndex, to: end.upperBound)
            let head = String(decoding: view[view.startIndex..<end.lowerBound], as: UTF8.self)
            let lines = head.split(separator: "\r\n")
            let status = lines.first.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
            var headers: [String: String] = [:]
            for line in lines.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            let length = headers["content-length"].flatMap { Int($0) } ?? 0
            guard s.input.readableBytes >= headerLength + length, let promise = s.pending else { return nil }
            s.input.moveReaderIndex(forwardBy: headerLength)
            let body = s.input.readSlice(length: length)!
            s.input.discardReadBytes()
            s.pending = nil
            return (promise, Response(status: status, headers: headers, body: body))
        }
        if let (promise, response) = done { promise.succeed(response) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        let promise = state.withLock { s -> EventLoopPromise<Response>? in
            defer { s.pending = nil }
            return s.pending
        }
        promise?.fail(Closed())
        channel.withLock { $0 = nil }
    }
}
