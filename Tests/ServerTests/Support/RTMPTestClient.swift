import AMF0
import NIOCore
import RTMP
import TestSupport

/// A minimal RTMP client built from our own codec, for driving the server with exact (and wrong) bytes.
final class RTMPTestClient: @unchecked Sendable {
    let tcp: TCPTestClient
    var encoder = ChunkEncoder()
    var decoder = ChunkDecoder()
    var pending = ByteBuffer()
    var transaction: Double = 1

    init(tcp: TCPTestClient) { self.tcp = tcp }

    static func connect(port: Int) async throws -> RTMPTestClient {
        RTMPTestClient(tcp: try await TCPTestClient.connect(port: port))
    }

    /// Plain handshake; returns once S0+S1+S2 arrived and C2 was sent.
    func handshake() async throws {
        var rng = SystemRandomNumberGenerator()
        try await tcp.send(Handshake.clientHello(time: 0, using: &rng))
        var got = ByteBuffer()
        while got.readableBytes < 1 + 2 * 1536 {
            guard var b = await tcp.receive() else { throw TestFailure("closed during handshake") }
            got.writeBuffer(&b)
        }
        let s1 = got.getSlice(at: 1, length: 1536)!
        try await tcp.send(s1)
        got.moveReaderIndex(forwardBy: 1 + 2 * 1536)
        pending = got
    }

    func send(_ m: Message, csid: UInt32 = 3) async throws {
        var out = ByteBuffer()
        encoder.write(m, chunkStreamID: csid, to: &out)
        try await tcp.send(out)
    }

    func command(_ name: String, object: AMF0Value = .null, _ args: [AMF0Value] = [], streamID: UInt32 = 0) async throws {
        transaction += 1
        try await send(Command(name: name, transactionID: name == "publish" || name == "play" ? 0 : transaction,
                               object: object, arguments: args).message(streamID: streamID))
    }

    /// The next message from the server, nil if the connection closed first.
    func receive(timeout: Duration = .seconds(5)) async throws -> Message? {
        while true {
            if let m = try decoder.next(from: &pending) { return m }
            guard var b = await tcp.receive(timeout: timeout) else { return nil }
            pending.writeBuffer(&b)
        }
    }

    /// Reads until a command named `name` (or one of `names`) arrives.
    func expectCommand(_ names: Set<String>, timeout: Duration = .seconds(5)) async throws -> Command? {
        while let m = try await receive(timeout: timeout) {
            if m.type == .commandAMF0, let c = try? Command(m), names.contains(c.name) { return c }
        }
        return nil
    }

    /// The `code` of the next onStatus, nil if the connection closed first.
    func nextStatus(timeout: Duration = .seconds(5)) async throws -> String? {
        try await expectCommand(["onStatus"], timeout: timeout)?.arguments.first?.objectValue?["code"]?.stringValue
    }

    func connectApp(_ app: String = "live") async throws {
        try await handshake()
        try await command("connect", object: .object(["app": .string(app), "tcUrl": .string("rtmp://127.0.0.1/\(app)")]))
        guard let r = try await expectCommand(["_result", "_error"]), r.name == "_result" else {
            throw TestFailure("connect refused")
        }
    }

    /// connect + createStream + publish; returns the onStatus code.
    func publish(_ name: String, app: String = "live") async throws -> String? {
        try await connectApp(app)
        try await command("createStream")
        _ = try await expectCommand(["_result"])
        try await command("publish", [.string(name), "live"], streamID: 1)
        return try await nextStatus()
    }

    /// Live video until the task is cancelled: the sequence header, then a frame every 40 ms (a keyframe every
    /// `gop`), as an encoder sends it.
    func feedVideo(gop: Int) async throws -> Task<Void, any Error> {
        try await sendVideo(from: 0, count: 1, config: true)
        return Task {
            var ts: UInt32 = 40
            while !Task.isCancelled {
                try await sendVideo(from: ts, count: 1, gop: gop)
                ts += 40
                try await Task.sleep(for: .milliseconds(40))
            }
        }
    }

    /// A synthetic AVC stream: sequence header, then `count` frames of 40 ms, a keyframe every `gop`.
    func sendVideo(from ts: UInt32, count: Int, gop: Int = 25, size: Int = 2000, config: Bool = false) async throws {
        if config {
            try await send(Message(type: .video, streamID: 1, timestamp: ts, payload: ByteBuffer(bytes: [0x17, 0, 0, 0, 0,
                1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, 4, 0x67, 0x42, 0xC0, 0x1E, 1, 0, 4, 0x68, 0xCE, 0x3C, 0x80])), csid: 7)
        }
        for i in 0..<count {
            let key = i % gop == 0
            try await send(Message(type: .video, streamID: 1, timestamp: ts + UInt32(i * 40),
                                   payload: ByteBuffer(bytes: [key ? 0x17 : 0x27, 1, 0, 0, 0] + [UInt8](repeating: 0x55, count: size))),
                           csid: 7)
        }
    }
}
