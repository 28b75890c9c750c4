import NIOCore

/// One reassembled RTMP message (RTMP 1.0 section 6.1): a header and an opaque payload.
public struct Message: Sendable, Equatable {
    /// The raw type id; see ``MessageType`` for the ones we know.
    public var typeID: UInt8
    /// Message stream id: 0 for the NetConnection, the id `createStream` returned for a NetStream.
    public var streamID: UInt32
    /// Absolute timestamp in milliseconds, 32 bits that wrap (RTMP 1.0 section 5.3.1.3).
    public var timestamp: UInt32
    public var payload: ByteBuffer

    public init(typeID: UInt8, streamID: UInt32, timestamp: UInt32, payload: ByteBuffer) {
        self.typeID = typeID
        self.streamID = streamID
        self.timestamp = timestamp
        self.payload = payload
    }

    public init(type: MessageType, streamID: UInt32 = 0, timestamp: UInt32 = 0, payload: ByteBuffer) {
        self.init(typeID: type.rawValue, streamID: streamID, timestamp: timestamp, payload: payload)
    }

    public var type: MessageType? { MessageType(rawValue: typeID) }
}
