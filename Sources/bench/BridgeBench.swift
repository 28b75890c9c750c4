import ArgumentParser
import Foundation
import NIOCore
import NIOPosix

/// The RTMP-to-WebRTC bridge under load, on a running server: one RTMP publisher sends a synthetic H.264 stream
/// (`SyntheticPublisher`, a valid avcC and one slice per frame) and `viewers` WHEP sessions play it, each a real
/// DTLS-SRTP client on its own UDP socket (`BenchPeer`, with an H.264 offer). Prints one Markdown row: the server's
/// CPU, CPU time per RTP packet sent, the share of packets delivered, memory per viewer session, and the
/// server-added video delay (a frame complete in the hub to its SRTP packets handed to the socket, from the
/// server's own `/api/v1/webrtc/streams`). Against another server (`--no-server-api`) the CPU is per packet received.
struct BridgeLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bridge")

    @Option(help: "Server host.") var host = "127.0.0.1"
    @Option(help: "Server RTMP port.") var rtmpPort = 1935
    @Option(help: "Server HTTP port (WHEP, API).") var httpPort = 8080
    @Option(help: "Server media port (UDP).") var rtcPort = 8000
    @Option(help: "Server process id, for CPU and memory (from /proc).") var pid: Int32
    @Option(help: "WHEP viewers.") var viewers = 10
    @Option(help: "Stream bitrate in bits per second.") var bitrate = 2_000_000
    @Option(help: "Frames per second.") var fps = 30
    @Option(help: "Keyframe interval in frames.") var gop = 60
    @Option(help: "Seconds of measurement.") var seconds = 10
    @Option(help: "WHEP path, {stream} for the stream name (SRS: /rtc/v1/whep/?app=live&stream={stream}).")
    var whepPath = "/whep/live/{stream}"
    @Flag(help: "The server has no /api/v1/webrtc/streams (another server): packets are counted as received; the delivered share and the server-added delay are not known.")
    var noServerAPI = false

    struct API: Decodable {
        struct Stream: Decodable { var packetsSent: Int }
        struct Delay: Decodable { var samples: Int; var p50Ms: Double?; var p99Ms: Double? }
        var bridged: [Stream]
        var bridgeVideoDelay: Delay
    }

    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let publisher = try await SyntheticPublisher.start(group: group, host: host, port: rtmpPort, stream: "bridgebench", bitrate: bitrate,
                                                           fps: fps, gop: gop, epoch: .now)
        let server = try SocketAddress(ipAddress: host, port: rtcPort)
        let http = noServerAPI ? nil : try await HTTPConnection.open(group: group, host: host, port: httpPort)
        let whep = HTTPSession(group: group, host: host, port: httpPort)
        try await Task.sleep(for: .seconds(2))
        let base = ProcStats.read(pid: pid)
        var peers: [BenchPeer] = []
        for _ in 0..<viewers {
            peers.append(try await BenchPeer.connect(group: group, http: whep, path: whepPath.replacingOccurrences(of: "{stream}", with: "bridgebench"),
                                                     sending: false, server: server,
                                                     options: .init(h264: true)))
        }
        // Every viewer past its catch-up (a GOP at 4x) and its buffers filled by traffic.
        try await Task.sleep(for: .seconds(3))
        let loaded = ProcStats.read(pid: pid)
        let sent0 = try await api(http)?.bridged.reduce(0) { $0 + $1.packetsSent }
        let received0 = peers.reduce(0) { $0 + $1.received.load(ordering: .relaxed) }
        let before = ProcStats.read(pid: pid)
        try await Task.sleep(for: .seconds(seconds))
        let after = ProcStats.read(pid: pid)
        let received = peers.reduce(0) { $0 + $1.received.load(ordering: .relaxed) } - received0
        let final = try await api(http)
        let sent = final.flatMap { f in sent0.map { f.bridged.reduce(0) { $0 + $1.packetsSent } - $0 } }
        publisher.stop()
        for p in peers { await p.close(http: whep) }
        http?.close()
        try await group.shutdownGracefully()

        let wall = (after.at - before.at) / .seconds(1)
        let cpuSeconds = after.cpuSeconds - before.cpuSeconds
        let perViewerKiB = viewers > 0 ? (loaded.rssMiB - base.rssMiB) * 1024 / Double(viewers) : 0
        // Per packet sent by the server when it says how many; else per packet received.
        let packets = sent ?? received
        let columns: [String] = [
            "\(viewers)", sent.map { fixed(Double($0) / wall, 0) } ?? "-",
            sent.map { $0 > 0 ? fixed(Double(received) / Double($0) * 100, 1) : "0" } ?? "-", fixed(cpuSeconds / wall * 100, 0),
            packets > 0 ? fixed(cpuSeconds / Double(packets) * 1e6, 2) : "-", fixed(perViewerKiB, 0),
            final?.bridgeVideoDelay.p50Ms.map { fixed($0, 2) } ?? "-", final?.bridgeVideoDelay.p99Ms.map { fixed($0, 2) } ?? "-",
        ]
        print("| " + columns.joined(separator: " | ") + " |")
    }

    func api(_ http: HTTPConnection?) async throws -> API? {
        guard let http else { return nil }
        let r = try await http.get("/api/v1/webrtc/streams")
        return try JSONDecoder().decode(API.self, from: Data(String(buffer: r.body).utf8))
    }
}
