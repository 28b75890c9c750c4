import AMF0
import NIOCore

/// An AMF0 command (RTMP 1.0 section 7.1.1 and 7.2): name, transaction id, command object, arguments.
///
/// Type 17 (AMF3 command) bodies start with a zero format byte followed by AMF0, which ``init(_:)`` accepts too.
public struct Command: Sendable, Equatable {
    public var name: String
    public var transactionID: Double
    /// The command object: an object for `connect`, null for most others.
    public var object: AMF0Value
    public var arguments: [AMF0Value]

    public init(name: String, transactionID: Double, object: AMF0Value = .null, arguments: [AMF0Value] = []) {
        self.name = name
        self.transactionID = transactionID
        self.object = object
        self.arguments = arguments
    }

    public init(_ message: Message) throws(RTMPError) {
        var payload = message.payload
        if message.type == .commandAMF3, payload.getInteger(at: payload.readerIndex, as: UInt8.self) == 0 {
            payload.moveReaderIndex(forwardBy: 1)
        }
        let values: [AMF0Value]
        do { values = try AMF0Value.parseAll(payload) } catch { throw .amf0(error) }
        guard let name = values.first?.stringValue else { throw .malformedMessage("command without a name") }
        self.name = name
        // Some encoders omit the transaction id and command object on notifications.
        self.transactionID = values.count > 1 ? (values[1].numberValue ?? 0) : 0
        self.object = values.count > 2 ? values[2] : .null
        self.arguments = Array(values.dropFirst(3))
    }

    public func message(streamID: UInt32) -> Message {
        var p = ByteBufferAllocator().buffer(capacity: 128)
        AMF0Value.string(name).write(to: &p)
        AMF0Value.number(transactionID).write(to: &p)
        object.write(to: &p)
        for a in arguments { a.write(to: &p) }
        return Message(type: .commandAMF0, streamID: streamID, payload: p)
    }
}
