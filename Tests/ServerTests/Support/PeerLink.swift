import Foundation
import Locks
import NIOCore

/// How a test peer's packets reach the media port and come back: a UDP socket, or an ICE-TCP connection (RFC 4571:
/// each packet after its length, 16 bits big-endian).
protocol PeerLink: Sendable {
    /// The local port (of the socket, or of the connection).
    var localPort: Int { get }
    func send(_ packet: [UInt8]) async throws
    /// Several packets at once: on UDP one `sendmmsg`, so that they reach the server as one read burst.
    func send(burst packets: [[UInt8]]) async throws
    /// The next packet; nil when nothing came within `timeout` or the connection closed.
    func receive(timeout: Duration) async -> [UInt8]?
    func close()
}

/// A UDP socket, sending to the media port `port`.
struct UDPLink: PeerLink {
    let socket: UDPTestClient
    let port: Int

    var localPort: Int { socket.localPort }
    func send(_ packet: [UInt8]) async throws { try await socket.send(packet, to: port) }
    func send(burst packets: [[UInt8]]) async throws { try await socket.send(burst: packets, to: port) }
    func receive(timeout: Duration) async -> [UInt8]? { await socket.receive(timeout: timeout) }
    func close() { socket.close() }
}

/// An ICE-TCP connection to the media port.
final class FramedTCPLink: PeerLink {
    let connection: TCPTestClient
    /// Bytes received and not yet cut into packets.
    private let received = Mutex(ByteBuffer())

    init(connection: TCPTestClient) { self.connection = connection }

    static func connect(port: Int) async throws -> FramedTCPLink {
        FramedTCPLink(connection: try await TCPTestClient.connect(port: port))
    }

    static func framed(_ packet: [UInt8]) -> ByteBuffer {
        var out = ByteBuffer()
        out.writeInteger(UInt16(packet.count))
        out.writeBytes(packet)
        return out
    }

    var localPort: Int { connection.channel.localAddress?.port ?? 0 }
    func send(_ packet: [UInt8]) async throws { try await connection.send(Self.framed(packet)) }

    func send(burst packets: [[UInt8]]) async throws {
        var all = ByteBuffer()
        for p in packets {
            var f = Self.framed(p)
            all.writeBuffer(&f)
        }
        try await connection.send(all)
    }

    func receive(timeout: Duration) async -> [UInt8]? {
        let deadline = ContinuousClock.now + timeout
        while true {
            let packet = received.withLock { b -> [UInt8]? in
                guard let length = b.getInteger(at: b.readerIndex, as: UInt16.self), b.readableBytes >= 2 + Int(length) else { return nil }
                b.moveReaderIndex(forwardBy: 2)
                return b.readBytes(length: Int(length))
            }
            if let packet { return packet }
            let left = deadline - ContinuousClock.now
            guard left > .zero, var more = await connection.receive(timeout: left) else { return nil }
            received.withLock { $0.writeBuffer(&more) }
        }
    }

    func close() { connection.channel.close(promise: nil) }
}
