import FLV
import NIOCore
import TestSupport

/// An HTTP-FLV viewer on a raw socket: parses the response and the FLV tags, noting when each arrived.
final class FLVTestClient: @unchecked Sendable {
    struct Tag {
        var tag: FLVTag
        var arrival: ContinuousClock.Instant
        var isVideoKeyframe: Bool {
            guard tag.type == .video, let h = try? VideoTagHeader(parsing: tag.body) else { return false }
            return h.frameType == .key && h.packetType == .codedFrames
        }
        var isVideoConfig: Bool {
            guard tag.type == .video, let h = try? VideoTagHeader(parsing: tag.body) else { return false }
            return h.packetType == .sequenceStart
        }
    }

    let tcp: TCPTestClient
    var status = 0
    var headers: [String: String] = [:]
    var chunked = false
    var raw = ByteBuffer()      // bytes after the HTTP header, still chunk-encoded if chunked
    var body = ByteBuffer()     // de-chunked FLV bytes
    var sawFLVHeader = false
    var tags: [Tag] = []
    var ended = false
    let started = ContinuousClock.now

    init(tcp: TCPTestClient) { self.tcp = tcp }

    static func open(port: Int, path: String, throttled: Bool = false, readSize: Int = 4096) async throws -> FLVTestClient {
        let tcp = try await TCPTestClient.connect(port: port, throttled: throttled, readSize: readSize)
        try await tcp.send("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://player.example\r\nUser-Agent: liveswarm-test\r\n\r\n")
        if throttled { tcp.pump(reads: 4) }
        let c = FLVTestClient(tcp: tcp)
        try await c.readHeader()
        return c
    }

    func readHeader() async throws {
        var head = ByteBuffer()
        while true {
            guard var b = await tcp.receive() else { throw TestFailure("closed before the HTTP header") }
            head.writeBuffer(&b)
            let view = Array(head.readableBytesView)
            if let end = find(view, [13, 10, 13, 10]) {
                let text = String(decoding: view[..<end], as: UTF8.self)
                let lines = text.components(separatedBy: "\r\n")
                status = Int(lines[0].split(separator: " ")[1]) ?? 0
                for l in lines.dropFirst() {
                    if let c = l.firstIndex(of: ":") {
                        headers[l[..<c].lowercased()] = l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)
                    }
                }
                chunked = headers["transfer-encoding"]?.lowercased() == "chunked"
                head.moveReaderIndex(forwardBy: end + 4)
                raw = head
                try parse()
                return
            }
            tcp.pump()
        }
    }

    func find(_ a: [UInt8], _ n: [UInt8]) -> Int? {
        guard a.count >= n.count else { return nil }
        for i in 0...(a.count - n.count) where Array(a[i..<(i + n.count)]) == n { return i }
        return nil
    }

    /// Reads once more from the socket (pumping it if throttled) and parses what arrived.
    @discardableResult
    func poll(timeout: Duration = .seconds(5)) async throws -> Bool {
        tcp.pump()
        guard var b = await tcp.receive(timeout: timeout) else {
            if !tcp.channel.isActive { ended = true }
            return false
        }
        raw.writeBuffer(&b)
        try parse()
        return true
    }

    /// Reads until `condition` holds or the stream ends; returns whether it held.
    func read(until condition: (FLVTestClient) -> Bool, timeout: Duration = .seconds(10)) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !condition(self) {
            guard ContinuousClock.now < deadline, try await poll(timeout: deadline - ContinuousClock.now) else { return condition(self) }
        }
        return true
    }

    func parse() throws {
        if chunked {
            while true {
                let view = Array(raw.readableBytesView.prefix(20))
                guard let lineEnd = find(view, [13, 10]) else { break }
                guard let size = Int(String(decoding: view[..<lineEnd], as: UTF8.self).split(separator: ";")[0], radix: 16) else {
                    throw TestFailure("bad chunk size line")
                }
                guard raw.readableBytes >= lineEnd + 2 + size + 2 else { break }
                raw.moveReaderIndex(forwardBy: lineEnd + 2)
                var chunk = raw.readSlice(length: size)!
                raw.moveReaderIndex(forwardBy: 2)
                body.writeBuffer(&chunk)
                if size == 0 { ended = true }
            }
        } else {
            body.writeBuffer(&raw)
        }
        if !sawFLVHeader {
            guard body.readableBytes >= 13 else { return }
            _ = try FLVHeader(parsing: &body)  // consumes PreviousTagSize0 too
            sawFLVHeader = true
        }
        let now = ContinuousClock.now
        while let t = try FLVTag.parse(from: &body) { tags.append(Tag(tag: t, arrival: now)) }
        body.discardReadBytes()
    }

    /// Reads in the background (so arrival times stay true) until the returned task is cancelled.
    func readInBackground() -> Task<Void, Never> {
        Task {
            while !Task.isCancelled, !ended {
                _ = try? await poll(timeout: .seconds(1))
            }
        }
    }

    func close() async { await tcp.close() }
}
