import NIOCore

/// One FLV tag: header fields plus the undecoded body (Adobe FLV spec v10.1, E.4.1).
public struct FLVTag: Sendable, Equatable {
    /// TagType.
    public var type: TagType
    /// Timestamp in milliseconds: the 24-bit field extended by TimestampExtended as the high byte.
    public var timestamp: UInt32
    /// The tag body (AudioTagHeader / VideoTagHeader + data, or AMF0 script data).
    public var body: ByteBuffer

    /// Bytes in a tag header.
    public static let headerSize = 11

    /// DataSize is 24 bits on the wire.
    static let maxDataSize = 0xFF_FFFF

    /// Creates a tag.
    public init(type: TagType, timestamp: UInt32, body: ByteBuffer) {
        self.type = type
        self.timestamp = timestamp
        self.body = body
    }

    /// Parses one tag and its trailing PreviousTagSize from the reader index; returns nil (consuming nothing) if the buffer doesn't yet hold the whole tag (streaming); throws on an unknown tag type or a filtered/encrypted tag or a dataSize above `maxBodySize` (param, default 16 MiB).
    ///
    /// Format: Adobe FLV spec v10.1 E.4.1 (FLVTAG) and E.3 (PreviousTagSize). The body is a
    /// slice of `buffer` (no copy). PreviousTagSize is consumed but not checked: several
    /// muxers write it wrong, and the size that matters for framing is DataSize. StreamID is
    /// likewise ignored. The size limit is checked from the header alone, so an oversized tag
    /// is rejected before its bytes are buffered.
    public static func parse(from buffer: inout ByteBuffer, maxBodySize: Int = 16 << 20) throws(FLVError) -> FLVTag? {
        let start = buffer.readerIndex
        guard buffer.readableBytes >= headerSize,
              let flags = buffer.getInteger(at: start, as: UInt8.self),
              let size = buffer.getFLVUInt24(at: start + 1),
              let timestampLow = buffer.getFLVUInt24(at: start + 4),
              let timestampHigh = buffer.getInteger(at: start + 7, as: UInt8.self)
        else { return nil }

        // Bits 7-6 are reserved for FMS; bit 5 marks filtered (encrypted) bodies (E.4.1).
        guard flags & 0x20 == 0 else { throw .invalid("filtered (encrypted) tag") }
        guard let type = TagType(rawValue: flags & 0x1F) else { throw .invalid("tag type \(flags & 0x1F)") }
        let dataSize = Int(size)
        guard dataSize <= maxBodySize else { throw .invalid("DataSize \(dataSize) exceeds \(maxBodySize)") }

        let total = headerSize + dataSize + 4
        guard buffer.readableBytes >= total,
              let body = buffer.getSlice(at: start + headerSize, length: dataSize)
        else { return nil }
        buffer.moveReaderIndex(forwardBy: total)
        return FLVTag(type: type, timestamp: UInt32(timestampHigh) << 24 | timestampLow, body: body)
    }

    /// Writes the 11-byte header, the body and PreviousTagSize.
    public func write(to buffer: inout ByteBuffer) {
        Self.write(type: type, timestamp: timestamp, body: body, to: &buffer)
    }

    /// Same as `write(to:)` without constructing a tag.
    ///
    /// A body over 16 MiB - 1 cannot be framed (DataSize is 24 bits); every wire source
    /// (RTMP message length, FLV DataSize) has the same limit, so that is a programmer error.
    public static func write(type: TagType, timestamp: UInt32, body: ByteBuffer, to buffer: inout ByteBuffer) {
        let dataSize = body.readableBytes
        precondition(dataSize <= maxDataSize, "FLV tag body of \(dataSize) bytes exceeds the 24-bit DataSize")
        buffer.writeInteger(type.rawValue)
        buffer.writeFLVUInt24(UInt32(dataSize))
        buffer.writeFLVUInt24(timestamp & 0xFF_FFFF)
        buffer.writeInteger(UInt8(truncatingIfNeeded: timestamp >> 24))
        buffer.writeFLVUInt24(0)   // StreamID
        var bodyCopy = body
        buffer.writeBuffer(&bodyCopy)
        buffer.writeInteger(UInt32(headerSize + dataSize))
    }
}
