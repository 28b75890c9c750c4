import FuzzSupport
import Foundation
@testable import Signaling

/// The room protocol's client messages (JSON over the /ws WebSocket, docs/ROOMS.md). A message either parses or
/// is refused with an error the server can send back as JSON (which parses, and is an error); a ping's pong is
/// JSON whose type is "pong" and which keeps the ping's other fields.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let message: ClientMessage
    do {
        message = try ClientMessage(parsing: text)
    } catch {
        let reply = ServerMessage.error(error).json
        guard let back = try? JSONDecoder().decode(JSONValue.self, from: Data(reply.utf8)), case .object(let fields) = back,
              fields["type"] == .string("error") else { fatalError("an error reply that is not a JSON error: \(reply)") }
        check(reply.utf8.count <= 8192, "an error reply of \(reply.utf8.count) bytes echoes the message")
        return 0
    }
    if case .ping(let pong) = message {
        guard let back = try? JSONDecoder().decode(JSONValue.self, from: Data(pong.text.utf8)), case .object(let fields) = back,
              fields["type"] == .string("pong") else { fatalError("a pong that is not JSON of type pong: \(pong.text)") }
        guard case .object(let sent)? = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) else { fatalError("a ping that was not an object") }
        check(Set(sent.keys) == Set(fields.keys), "the pong's fields \(fields.keys.sorted()) are not the ping's \(sent.keys.sorted())")
    }
    return 0
}
