import LoopbackWebSocket
import Locks
import TestSupport

/// A WebSocket client for tests: send text, receive text or the close, each with a deadline.
final class WebSocketTestClient: Sendable {
    enum Event: Sendable, Equatable {
        case text(String)
        /// The connection ended; the server's close code, if it sent one.
        case closed(UInt16?)
    }

    let received = Mutex<[Event]>([])
    let connected = Mutex<Bool?>(nil)
    enum Outgoing: Sendable {
        case text(String)
        /// End the connection: with a close frame of this code, or none (nil: the TCP connection just ends).
        case end(UInt16?)
    }

    let outbox: AsyncStream<Outgoing>.Continuation
    let outgoing: AsyncStream<Outgoing>
    let task = Mutex<Task<Void, Never>?>(nil)

    private init() {
        (outgoing, outbox) = AsyncStream<Outgoing>.makeStream()
    }

    /// Connects and returns once the upgrade has been answered (or throws if it was refused).
    static func connect(port: Int, path: String = "/tracker") async throws -> WebSocketTestClient {
        let client = WebSocketTestClient()
        client.task.withLock { $0 = Task { await client.run(port: port, path: path) } }
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            switch client.connected.withLock({ $0 }) {
            case true?: return client
            case false?: throw TestFailure("WebSocket connection to \(path) refused")
            case nil: try await Task.sleep(for: .milliseconds(5))
            }
        }
        client.close()
        throw TestFailure("WebSocket connection to \(path): no answer within 10 s")
    }

    private func run(port: Int, path: String) async {
        let outgoing = self.outgoing
        do {
            let code = try await LoopbackWebSocket.connect(port: port, path: path) { inbound, outbound in
                self.connected.withLock { $0 = true }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for await message in outgoing {
                            // A write after the server closed fails; the inbound side reports how it closed.
                            switch message {
                            case .text(let text): try? await outbound.send(text)
                            case .end(let code?): try? await outbound.close(code: code)
                            case .end(nil):
                                await outbound.abandon()
                                return
                            }
                        }
                    }
                    group.addTask {
                        for try await message in inbound {
                            if case .text(let t) = message { self.received.withLock { $0.append(.text(t)) } }
                        }
                    }
                    // Either the server ended the connection, or the client abandoned it.
                    try await group.next()
                    group.cancelAll()
                }
            }
            received.withLock { $0.append(.closed(code)) }
        } catch {
            received.withLock { $0.append(.closed(nil)) }
        }
        connected.withLock { if $0 == nil { $0 = false } }
    }

    func send(_ text: String) { outbox.yield(.text(text)) }

    /// Ends the connection with a close frame of `code`, or without one (nil): the TCP connection just ends.
    func end(code: UInt16?) { outbox.yield(.end(code)) }

    /// The next event, or nil if none within `timeout`.
    func next(timeout: Duration = .seconds(5)) async -> Event? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let e = received.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) { return e }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return nil
    }

    /// The next text message, failing on a close or a timeout.
    func text(timeout: Duration = .seconds(5)) async throws -> String {
        switch await next(timeout: timeout) {
        case .text(let t): return t
        case let other: throw TestFailure("expected a message, got \(String(describing: other))")
        }
    }

    func close() {
        outbox.finish()
        task.withLock { $0?.cancel() }
    }
}
