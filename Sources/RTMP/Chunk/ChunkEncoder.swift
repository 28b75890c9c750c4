import NIOCore

/// Splits messages into chunks (RTMP 1.0 section 5.3) for one direction of a connection.
///
/// Uses a type 0 header for the first message on a chunk stream, or when the message stream changes
/// or time goes backwards, and a type 1 header (timestamp delta) otherwise; continuation chunks are type 3.
/// Extended timestamps are repeated on type 3 chunks, as ffmpeg, OBS and Flash expect.
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
        precondition(csid >= 2 && csid <= 65599, "chunk stream ids 0 and 1 are reserved for the encoding")
        var payload = message.payload
        let length = payload.readableBytes
        let prev = last[csid]
        let fmt: UInt8
        let field: UInt32
        if let prev, prev.streamID == message.streamID, message.timestamp >= prev.timestamp {
            fmt = 1
            field = message.timestamp - prev.timestamp
        } else {
            fmt = 0
            field = message.timestamp
        }
        last[csid] = Last(timestamp: message.timestamp, streamID: message.streamID)
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

    private func writeBasicHeader(fmt: UInt8, csid: UInt32, to out: inout ByteBuffer) {
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

    private func writeUInt24(_ v: UInt32, to out: inout ByteBuffer) {
        out.writeInteger(UInt8((v >> 16) & 0xFF))
        out.writeInteger(UInt8((v >> 8) & 0xFF))
        out.writeInteger(UInt8(v & 0xFF))
    }
}
