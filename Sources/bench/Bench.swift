import AMF0
import ArgumentParser
import FLV
import Foundation
import NIOCore
import NIOPosix
import RTMP
import Locks

/// Load tools for BENCHMARKS.md. Each runs against a `liveswarm serve` started separately, so that the
/// figures for the server process are not mixed with the load generator's.
@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "liveswarm-bench",
        abstract: "Load generators for LiveSwarm benchmarks.",
        subcommands: [Fanout.self, HLSLoad.self, STUNLoad.self, SRTPThroughput.self, SFULoad.self, RoomsLoad.self, BridgeLoad.self, TranscodeThroughput.self,
                      TrackerSwarmBench.self, TrackerLoadBench.self])
}

/// Publishes one synthetic RTMP stream and opens N HTTP-FLV or RTMP viewers of it, then reports the server's
/// CPU and memory per viewer and the delivery lag (publisher send to viewer receive) of every video frame.
struct Fanout: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "fanout")

    enum Kind: String, ExpressibleByArgument { case flv, rtmp }

    @Option(help: "How viewers watch: flv (HTTP-FLV) or rtmp.") var protocolName: Kind = .flv

    @Option(help: "Server host.") var host = "127.0.0.1"
    @Option(help: "Server RTMP port.") var rtmpPort = 1935
    @Option(help: "Server HTTP port.") var httpPort = 8080
    @Option(help: "Server process id, for CPU and memory (from /proc).") var pid: Int32
    @Option(help: "Viewer counts to measure, one after another.") var viewers: [Int] = [100]
    @Option(help: "Seconds of measurement per viewer count.") var seconds = 15
    @Option(help: "Stream bitrate in bits per second.") var bitrate = 2_000_000
    @Option(help: "Frames per second.") var fps = 30
    @Option(help: "Keyframe interval in frames.") var gop = 60

    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let clock = ContinuousClock()
        let epoch = clock.now
        let publisher = try await SyntheticPublisher.start(group: group, host: host, port: rtmpPort, bitrate: bitrate,
                                                           fps: fps, gop: gop, epoch: epoch)
        try await Task.sleep(for: .seconds(2))
        print("| viewers | server CPU (% of one core) | CPU per viewer (% of a core) | RSS (MiB) | RSS per viewer (KiB) | lag p50 (ms) | lag p95 (ms) | lag p99 (ms) | frames received / expected |")
        print("|---|---|---|---|---|---|---|---|---|")
        var baseline = ProcStats.read(pid: pid)
        try await Task.sleep(for: .seconds(3))
        let idle = ProcStats.read(pid: pid)
        let idleCPU = idle.cpuPercent(since: baseline)
        print("| 0 (publisher only) | \(fmt(idleCPU)) | | \(fmt(idle.rssMiB)) | | | | | |")
        for n in viewers {
            var conns: [any LoadViewer] = []
            for _ in 0..<n {
                switch protocolName {
                case .flv:
                    conns.append(try await FLVViewer.open(group: group, host: host, port: httpPort, path: "/live/bench.flv", epoch: epoch))
                case .rtmp:
                    conns.append(try await RTMPViewer.open(group: group, host: host, port: rtmpPort, stream: "bench", epoch: epoch))
                }
            }
            try await Task.sleep(for: .seconds(3))
            // Only frames published from now on count: the cached GOP each new viewer receives first is not lag.
            let from = millis(since: epoch)
            for c in conns { c.reset(from: from) }
            baseline = ProcStats.read(pid: pid)
            try await Task.sleep(for: .seconds(seconds))
            let end = ProcStats.read(pid: pid)
            var lags: [Double] = []
            var frames = 0
            for c in conns {
                let (l, f) = c.take()
                lags += l
                frames += f
            }
            lags.sort()
            let cpu = end.cpuPercent(since: baseline)
            // Frames sent during the window (the last ones may still be in flight when it closes).
            let expected = n * seconds * fps
            func pct(_ p: Double) -> String { lags.isEmpty ? "-" : fmt(lags[min(lags.count - 1, Int(Double(lags.count) * p))]) }
            print("| \(n) | \(fmt(cpu)) | \(String(format: "%.3f", (cpu - idleCPU) / Double(n))) | \(fmt(end.rssMiB)) | \(fmt((end.rssMiB - idle.rssMiB) * 1024 / Double(n))) | \(pct(0.5)) | \(pct(0.95)) | \(pct(0.99)) | \(frames) / \(expected) |")
            for c in conns { c.close() }
            try await Task.sleep(for: .seconds(2))
        }
        publisher.stop()
        try await group.shutdownGracefully()
    }

    func fmt(_ v: Double) -> String { String(format: "%.1f", v) }
}

/// CPU time and resident memory of a process, from /proc.
struct ProcStats {
    var cpuSeconds: Double
    var rssMiB: Double
    var at: ContinuousClock.Instant

    static func read(pid: Int32) -> ProcStats {
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        var cpu = 0.0
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
           let close = stat.lastIndex(of: ")") {
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            // Fields after the command: state is 0, utime is 11, stime is 12.
            if fields.count > 12, let u = Double(fields[11]), let s = Double(fields[12]) { cpu = (u + s) / ticks }
        }
        var rss = 0.0
        if let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
           let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
           let kb = Double(line.split(separator: " ").dropFirst().first ?? "") {
            rss = kb / 1024
        }
        return ProcStats(cpuSeconds: cpu, rssMiB: rss, at: .now)
    }

    func cpuPercent(since start: ProcStats) -> Double {
        let seconds = (at - start.at) / .seconds(1)
        return seconds > 0 ? (cpuSeconds - start.cpuSeconds) / seconds * 100 : 0
    }
}

func millis(since epoch: ContinuousClock.Instant) -> Double {
    (ContinuousClock.now - epoch) / .milliseconds(1)
}

/// Publishes synthetic H.264-shaped FLV bodies at a constant bitrate; the RTMP timestamp of each frame is
/// the time (ms since `epoch`) it was sent, so a viewer's lag is its arrival time minus the tag's timestamp.
final class SyntheticPublisher: Sendable {
    let channel: any Channel
    let task: Task<Void, Never>

    init(channel: any Channel, task: Task<Void, Never>) {
        self.channel = channel
        self.task = task
    }

    static func start(group: any EventLoopGroup, host: String, port: Int, stream: String = "bench", bitrate: Int,
                      fps: Int, gop: Int, epoch: ContinuousClock.Instant) async throws -> SyntheticPublisher {
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: host, port: port).get()
        var rng = SystemRandomNumberGenerator()
        var encoder = ChunkEncoder()
        var out = Handshake.clientHello(time: 0, using: &rng)
        // The server's S0/S1/S2 are ignored: C2 may echo anything for a plain handshake server.
        out.writeRepeatingByte(0, count: Handshake.packetSize)
        let connect = Command(name: "connect", transactionID: 1, object: .object(["app": "live", "tcUrl": .string("rtmp://\(host)/live")]))
        encoder.write(connect.message(streamID: 0), chunkStreamID: 3, to: &out)
        encoder.write(Command(name: "createStream", transactionID: 2).message(streamID: 0), chunkStreamID: 3, to: &out)
        encoder.write(Command(name: "publish", transactionID: 0, arguments: [.string(stream), "live"]).message(streamID: 1), chunkStreamID: 3, to: &out)
        encoder.write(ProtocolControl.setChunkSize(4096).message, chunkStreamID: 2, to: &out)
        encoder.chunkSize = 4096
        try await channel.writeAndFlush(out).get()
        let frameBytes = bitrate / 8 / fps
        let task = Task { [encoder] in
            var encoder = encoder
            var n = 0
            let start = ContinuousClock.now
            // A real avcC (x264, 640x360 High): servers that parse the SPS for their statistics get a valid one.
            var config = ByteBuffer(bytes: [
                0x17, 0x00, 0x00, 0x00, 0x00, 0x01, 0x64, 0x00, 0x1E, 0xFF, 0xE1, 0x00, 0x1A, 0x67, 0x64, 0x00,
                0x1E, 0xAC, 0xD9, 0x40, 0xA0, 0x2F, 0xF9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00,
                0x03, 0x00, 0x3C, 0x0F, 0x16, 0x2D, 0x96, 0x01, 0x00, 0x04, 0x68, 0xEF, 0x8F, 0xCB, 0xFD, 0xF8,
                0xF8, 0x00,
            ])
            var buf = ByteBuffer()
            encoder.write(Message(type: .video, streamID: 1, timestamp: UInt32(millis(since: epoch)), payload: config), chunkStreamID: 7, to: &buf)
            config.clear()
            _ = try? await channel.writeAndFlush(buf).get()
            while !Task.isCancelled {
                let key = n % gop == 0
                // Keyframes are larger, as real ones are; the GOP averages to the target bitrate.
                let size = key ? frameBytes * 4 : max(64, (frameBytes * gop - frameBytes * 4) / max(1, gop - 1))
                // One length-prefixed NAL unit (IDR or non-IDR slice), so that muxers that check AVCC (HLS) take it.
                var body = ByteBuffer()
                body.writeBytes([key ? 0x17 : 0x27, 1, 0, 0, 0])
                body.writeInteger(UInt32(size))
                body.writeInteger(UInt8(key ? 0x65 : 0x41))
                body.writeRepeatingByte(0x5A, count: size - 1)
                var msg = ByteBuffer()
                encoder.write(Message(type: .video, streamID: 1, timestamp: UInt32(millis(since: epoch)), payload: body),
                              chunkStreamID: 7, to: &msg)
                _ = try? await channel.writeAndFlush(msg).get()
                n += 1
                try? await Task.sleep(until: start + .milliseconds(n * 1000 / fps))
            }
        }
        return SyntheticPublisher(channel: channel, task: task)
    }

    func stop() {
        task.cancel()
        channel.close(promise: nil)
    }
}

/// The lag of each video frame one viewer received, counting only frames sent at or after `from`.
final class LagRecorder: Sendable {
    struct State {
        var lags: [Double] = []
        var frames = 0
        var from = Double.infinity
    }

    let state = Mutex(State())

    func record(timestamp: Double, now: Double) {
        state.withLock { s in
            guard timestamp >= s.from else { return }
            s.lags.append(now - timestamp)
            s.frames += 1
        }
    }
}

/// A viewer connection of the load: it records the lag of each video frame it receives.
protocol LoadViewer: Sendable {
    var lags: LagRecorder { get }
    var channel: Mutex<(any Channel)?> { get }
}

extension LoadViewer {
    /// Forgets what was recorded and from now on records only frames sent at or after `from` (ms since epoch).
    func reset(from: Double) { lags.state.withLock { $0 = LagRecorder.State(from: from) } }
    func take() -> ([Double], Int) { lags.state.withLock { ($0.lags, $0.frames) } }
    func close() { channel.withLock { $0?.close(promise: nil) } }

    /// Connects `handler` (the viewer itself) and remembers the channel.
    func connect(group: any EventLoopGroup, host: String, port: Int) async throws -> any Channel
    where Self: ChannelHandler {
        let ch = try await ClientBootstrap(group: group)
            .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(self) } }
            .connect(host: host, port: port).get()
        channel.withLock { $0 = ch }
        return ch
    }
}

/// One HTTP-FLV viewer that scans tag headers (no copies) and records each video tag's lag.
final class FLVViewer: ChannelInboundHandler, LoadViewer {
    typealias InboundIn = ByteBuffer

    struct State {
        var headerDone = false
        var raw = ByteBuffer()
        /// Bytes left in the current HTTP chunk; -1 while a chunk-size line is expected.
        var chunkLeft = -1
        var flvHeaderLeft = 13
        var pending = ByteBuffer()
    }

    let state = Mutex(State())
    let epoch: ContinuousClock.Instant
    let lags = LagRecorder()
    let channel = Mutex<(any Channel)?>(nil)

    init(epoch: ContinuousClock.Instant) { self.epoch = epoch }

    static func open(group: any EventLoopGroup, host: String, port: Int, path: String,
                     epoch: ContinuousClock.Instant) async throws -> FLVViewer {
        let viewer = FLVViewer(epoch: epoch)
        let ch = try await viewer.connect(group: group, host: host, port: port)
        try await ch.writeAndFlush(ByteBuffer(string: "GET \(path) HTTP/1.1\r\nHost: \(host)\r\n\r\n")).get()
        return viewer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        let now = millis(since: epoch)
        state.withLock { s in
            s.raw.writeBuffer(&bytes)
            if !s.headerDone {
                let view = s.raw.readableBytesView
                guard let end = view.firstRange(of: [13, 10, 13, 10]) else { return }
                s.raw.moveReaderIndex(forwardBy: view.distance(from: view.startIndex, to: end.upperBound))
                s.headerDone = true
            }
            // Undo the chunked transfer encoding (the server streams FLV as HTTP/1.1 chunks).
            while s.raw.readableBytes > 0 {
                if s.chunkLeft > 0 {
                    var piece = s.raw.readSlice(length: min(s.chunkLeft, s.raw.readableBytes))!
                    s.chunkLeft -= piece.readableBytes
                    s.pending.writeBuffer(&piece)
                    if s.chunkLeft == 0 { s.chunkLeft = -2 }  // the CRLF after the data
                } else if s.chunkLeft == -2 {
                    guard s.raw.readableBytes >= 2 else { break }
                    s.raw.moveReaderIndex(forwardBy: 2)
                    s.chunkLeft = -1
                } else {
                    let view = s.raw.readableBytesView
                    guard let crlf = view.firstRange(of: [13, 10]) else { break }
                    let line = String(decoding: view[view.startIndex..<crlf.lowerBound], as: UTF8.self)
                    s.raw.moveReaderIndex(forwardBy: view.distance(from: view.startIndex, to: crlf.upperBound))
                    s.chunkLeft = Int(line, radix: 16) ?? 0
                    if s.chunkLeft == 0 { s.chunkLeft = -2 }
                }
            }
            s.raw.discardReadBytes()
            let skip = min(s.flvHeaderLeft, s.pending.readableBytes)
            s.pending.moveReaderIndex(forwardBy: skip)
            s.flvHeaderLeft -= skip
            while s.pending.readableBytes >= 11 {
                let i = s.pending.readerIndex
                guard let type = s.pending.getInteger(at: i, as: UInt8.self),
                      let s0 = s.pending.getInteger(at: i + 1, as: UInt8.self),
                      let s12 = s.pending.getInteger(at: i + 2, as: UInt16.self),
                      let t0 = s.pending.getInteger(at: i + 4, as: UInt8.self),
                      let t12 = s.pending.getInteger(at: i + 5, as: UInt16.self),
                      let tx = s.pending.getInteger(at: i + 7, as: UInt8.self) else { break }
                let size = Int(s0) << 16 | Int(s12)
                guard s.pending.readableBytes >= 11 + size + 4 else { break }
                if type == 9 && size > 100 {
                    lags.record(timestamp: Double(UInt32(tx) << 24 | UInt32(t0) << 16 | UInt32(t12)), now: now)
                }
                s.pending.moveReaderIndex(forwardBy: 11 + size + 4)
            }
            s.pending.discardReadBytes()
        }
    }

}

/// One RTMP player: plain handshake, connect, createStream, play; then reassembles messages with our
/// ChunkDecoder and acknowledges the server's window as a real player does.
final class RTMPViewer: ChannelInboundHandler, LoadViewer {
    typealias InboundIn = ByteBuffer

    struct State {
        var handshakeLeft = 1 + 2 * Handshake.packetSize
        var input = ByteBuffer()
        var decoder = ChunkDecoder()
        var received: UInt64 = 0
        var acknowledged: UInt64 = 0
        var window: UInt64 = 2_500_000
    }

    let state = Mutex(State())
    let epoch: ContinuousClock.Instant
    let lags = LagRecorder()
    let channel = Mutex<(any Channel)?>(nil)

    init(epoch: ContinuousClock.Instant) { self.epoch = epoch }

    static func open(group: any EventLoopGroup, host: String, port: Int, stream: String,
                     epoch: ContinuousClock.Instant) async throws -> RTMPViewer {
        let viewer = RTMPViewer(epoch: epoch)
        let ch = try await viewer.connect(group: group, host: host, port: port)
        var rng = SystemRandomNumberGenerator()
        var out = Handshake.clientHello(time: 0, using: &rng)
        out.writeRepeatingByte(0, count: Handshake.packetSize)  // C2; plain-handshake servers do not check it
        var encoder = ChunkEncoder()
        encoder.write(Command(name: "connect", transactionID: 1,
                              object: .object(["app": "live", "tcUrl": .string("rtmp://\(host)/live")])).message(streamID: 0),
                      chunkStreamID: 3, to: &out)
        encoder.write(Command(name: "createStream", transactionID: 2).message(streamID: 0), chunkStreamID: 3, to: &out)
        encoder.write(Command(name: "play", transactionID: 0, arguments: [.string(stream)]).message(streamID: 1),
                      chunkStreamID: 8, to: &out)
        try await ch.writeAndFlush(out).get()
        return viewer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        let now = millis(since: epoch)
        var ack: UInt32?
        let failed: Bool = state.withLock { s in
            s.received += UInt64(bytes.readableBytes)
            if s.handshakeLeft > 0 {
                let skip = min(s.handshakeLeft, bytes.readableBytes)
                bytes.moveReaderIndex(forwardBy: skip)
                s.handshakeLeft -= skip
            }
            s.input.writeBuffer(&bytes)
            do {
                while let m = try s.decoder.next(from: &s.input) {
                    if m.type == .video, m.payload.readableBytes > 100 {
                        lags.record(timestamp: Double(m.timestamp), now: now)
                    } else if m.type == .windowAcknowledgementSize, case .windowAcknowledgementSize(let w)? = (try? ProtocolControl(m)) ?? nil {
                        s.window = UInt64(max(w, 4096))
                    }
                }
            } catch {
                return true
            }
            s.input.discardReadBytes()
            if s.received - s.acknowledged >= s.window {
                s.acknowledged = s.received
                ack = UInt32(truncatingIfNeeded: s.received)
            }
            return false
        }
        if failed {
            context.close(promise: nil)
            return
        }
        if let ack {
            var out = ByteBuffer()
            var encoder = ChunkEncoder()
            encoder.write(ProtocolControl.acknowledgement(sequenceNumber: ack).message, chunkStreamID: 2, to: &out)
            context.writeAndFlush(NIOAny(out), promise: nil)
        }
    }

}

/// `value` with `digits` decimals (a column of a printed row).
func fixed(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }

/// `perf record -e cpu-clock -g -p PID` from now until ``stop()``, for a profile of exactly the measured window.
/// Spawned with every signal unblocked and at its default: started from a thread of the bench (Foundation's
/// `Process` keeps the caller's mask), perf inherited SIGINT and SIGCHLD blocked, never saw its end, and spun.
struct PerfRecorder {
    struct Failed: Error, CustomStringConvertible { var description: String }

    let child: pid_t

    init(pid: Int32, output: String) throws {
        let arguments = ["/usr/bin/perf", "record", "-q", "-e", "cpu-clock", "-g", "-p", "\(pid)", "-o", output]
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = arguments.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var child: pid_t = 0
        let status = posix_spawn(&child, arguments[0], nil, &attributes, argv, environ)
        guard status == 0 else { throw Failed(description: "perf: \(String(cString: strerror(status)))") }
        self.child = child
    }

    /// Ends the recording (perf writes its file on SIGINT) and waits for perf to exit.
    func stop() {
        kill(child, SIGINT)
        var status: Int32 = 0
        _ = waitpid(child, &status, 0)
    }
}
