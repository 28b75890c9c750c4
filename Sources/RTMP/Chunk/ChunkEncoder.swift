import NIOCore

/// Splits messages into chunks (RTMP 1.0 section 5.3) for one direction of a connection.
///
/// ``write(_:chunkStreamID:to:)`` uses a type 0 header for the first message on a chunk stream, or when the
/// message stream changes or time goes backwards, and a type 1 header (timestamp delta) otherwise.
/// ``encodeStandalone(_:chunkStreamID:chunkSize:)`` always uses type 0, so its bytes depend on nothing but
/// the message: a server can chunk a frame once and send the same bytes to every player.
/// Continuation chunks are type 3, repeating the extended timestamp as ffmpeg, OBS and Flash expect.
public struct ChunkEncoder: Sendable {
    /// Our outgoing chunk size; announce it with Set Chunk Size before changing it.
    public var chunkSize: Int = 128

    struct Last {
        var timestamp: UInt32
        var streamID: UInt32
    }

    var last: [UInt32: Last] = [:]

    public init() {}

    public mutating func write(_ message: Message, chunkStreamID csid: UInt32, to out: inout ByteBuffer) {
        let prev = last[csid]
        last[csid] = Last(timestamp: message.timestamp, streamID: message.streamID)
        if let prev, prev.streamID == message.streamID, message.timestamp >= prev.timestamp {
            Self.encode(message, fmt: 1, field: message.timestamp - prev.timestamp, csid: csid, chunkSize: chunkSize, to: &out)
        } else {
            Self.encode(message, fmt: 0, field: message.timestamp, csid: csid, chunkSize: chunkSize, to: &out)
        }
    }

    /// The message chunked with a type 0 header, independent of any earlier message on the chunk stream.
    /// A peer that has seen other headers on `csid` decodes it correctly all the same.
    public static func encodeStandalone(_ message: Message, chunkStreamID csid: UInt32, chunkSize: Int) -> ByteBuffer {
        var out = ByteBuffer()
        encode(message, fmt: 0, field: message.timestamp, csid: csid, chunkSize: chunkSize, to: &out)
        return out
    }

    static func encode(_ message: Message, fmt: UInt8, field: UInt32, csid: UInt32, chunkSize: Int, to out: inout ByteBuffer) {
        precondition(csid >= 2 && csid <= 65599, "chunk stream ids 0 and 1 are reserved for the encoding")
        var payload = message.payload
        let length = payload.readableBytes
        let extended = field >= 0xFF_FFFF
        out.reserveCapacity(minimumWritableBytes: length + 18 + (length / max(chunkSize, 1)) * 8)
        writeBasicHeader(fmt: fmt, csid: csid, to: &out)
        writeUInt24(extended ? 0xFF_FFFF : field, to: &out)
        writeUInt24(UInt32(length), to: &out)
        out.writeInteger(message.typeID)
        if fmt == 0 { out.writeInteger(message.streamID, endianness: .little) }
        if extended { out.writeInteger(field) }

        var first = true
        while first || payload.readableBytes > 0 {
            if !first {
                writeBasicHeader(fmt: 3, csid: csid, to: &out)
                if extended { out.writeInteger(field) }
            }
            first = false
            var chunk = payload.readSlice(length: min(chunkSize, payload.readableBytes))!
            out.writeBuffer(&chunk)
        }
    }

    static func writeBasicHeader(fmt: UInt8, csid: UInt32, to out: inout ByteBuffer) {
        if csid < 64 {
            out.writeInteger(fmt << 6 | UInt8(csid))
        } else if csid < 320 {
            out.writeInteger(fmt << 6)
            out.writeInteger(UInt8(csid - 64))
        } else {
            out.writeInteger(fmt << 6 | 1)
            out.writeInteger(UInt8((csid - 64) & 0xFF))
            out.writeInteger(UInt8((csid - 64) >> 8))
        }
    }

    static func writeUInt24(_ v: UInt32, to out: inout ByteBuffer) {
        out.writeInteger(UInt8((v >> 16) & 0xFF))
        out.writeInteger(UInt8((v >> 8) & 0xFF))
        out.writeInteger(UInt8(v & 0xFF))
    }
}
