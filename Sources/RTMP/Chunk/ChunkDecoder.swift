import NIOCore

/// Reassembles RTMP messages from the chunk stream (RTMP 1.0 section 5.3).
///
/// ```
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |fmt|   cs id   | (cs id - 64, 1 or 2 bytes, when cs id is 0 or 1)
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | message header: 11 (fmt 0), 7 (fmt 1), 3 (fmt 2) or 0 (fmt 3) bytes
/// | [extended timestamp, 4 bytes, when the 24-bit field is 0xFFFFFF]
/// | chunk data: min(chunk size, bytes left in the message)
/// ```
///
/// The decoder is a pure value: feed it bytes, take messages out. It applies Set Chunk Size and Abort itself,
/// because they change how the following bytes are framed, and still returns them to the caller.
/// Memory is bounded: a message is never preallocated from its length field, a message may not exceed
/// `maxMessageSize`, and all partial messages together may not exceed `maxBufferedBytes`.
public struct ChunkDecoder: Sendable {
    /// The peer's chunk size, 128 until it sends Set Chunk Size (section 5.4.1).
    public private(set) var chunkSize: Int = 128
    public let maxMessageSize: Int
    public let maxBufferedBytes: Int
    public let maxChunkStreams: Int
    /// Bytes currently held in partial messages across all chunk streams.
    public private(set) var bufferedBytes = 0

    struct StreamState {
        var timestamp: UInt32 = 0
        /// The last timestamp field: the delta for fmt 1/2, the absolute value for fmt 0 (as ffmpeg and librtmp do).
        var timestampField: UInt32 = 0
        var length = 0
        var typeID: UInt8 = 0
        var streamID: UInt32 = 0
        var extended = false
        var partial: ByteBuffer?
    }

    var streams: [UInt32: StreamState] = [:]

    public init(maxMessageSize: Int = 8 << 20, maxBufferedBytes: Int = 16 << 20, maxChunkStreams: Int = 64) {
        self.maxMessageSize = maxMessageSize
        self.maxBufferedBytes = maxBufferedBytes
        self.maxChunkStreams = maxChunkStreams
    }

    /// Consumes whole chunks from `buffer` until one completes a message, and returns it.
    /// Returns nil, leaving any incomplete chunk in `buffer`, when more bytes are needed.
    public mutating func next(from buffer: inout ByteBuffer) throws(RTMPError) -> Message? {
        while true {
            guard let (message, rest) = try readChunk(buffer) else { return nil }
            buffer = rest
            if let message {
                try applyControl(message)
                return message
            }
        }
    }

    private mutating func applyControl(_ message: Message) throws(RTMPError) {
        switch message.type {
        case .setChunkSize:
            if case .setChunkSize(let size)? = try ProtocolControl(message) { chunkSize = Int(size) }
        case .abort:
            if case .abort(let csid)? = try ProtocolControl(message), let partial = streams[csid]?.partial {
                bufferedBytes -= partial.readableBytes
                streams[csid]?.partial = nil
            }
        default:
            break
        }
    }

    /// Reads one chunk from a copy of `input`. Returns nil when the chunk is incomplete; otherwise the
    /// message it completed (if any) and the input after the chunk. State changes only on a whole chunk.
    private mutating func readChunk(_ input: ByteBuffer) throws(RTMPError) -> (Message?, ByteBuffer)? {
        var b = input
        guard let first = b.readInteger(as: UInt8.self) else { return nil }
        let fmt = first >> 6
        var csid = UInt32(first & 0x3F)
        if csid == 0 {
            guard let x = b.readInteger(as: UInt8.self) else { return nil }
            csid = UInt32(x) + 64
        } else if csid == 1 {
            guard let lo = b.readInteger(as: UInt8.self), let hi = b.readInteger(as: UInt8.self) else { return nil }
            csid = UInt32(hi) * 256 + UInt32(lo) + 64
        }

        let known = streams[csid]
        guard fmt == 0 || known != nil else { throw .missingPreviousHeader(chunkStream: csid) }
        if known == nil, streams.count >= maxChunkStreams { throw .tooManyChunkStreams }
        var s = known ?? StreamState()
        let continuing = fmt == 3 && s.partial != nil

        if fmt <= 2 {
            guard let t0 = b.readInteger(as: UInt8.self), let t1 = b.readInteger(as: UInt8.self),
                  let t2 = b.readInteger(as: UInt8.self) else { return nil }
            var field = UInt32(t0) << 16 | UInt32(t1) << 8 | UInt32(t2)
            if fmt <= 1 {
                guard let l0 = b.readInteger(as: UInt8.self), let l1 = b.readInteger(as: UInt8.self),
                      let l2 = b.readInteger(as: UInt8.self), let type = b.readInteger(as: UInt8.self) else { return nil }
                s.length = Int(l0) << 16 | Int(l1) << 8 | Int(l2)
                s.typeID = type
                if fmt == 0 {
                    guard let sid = b.readInteger(endianness: .little, as: UInt32.self) else { return nil }
                    s.streamID = sid
                }
            }
            s.extended = field == 0xFF_FFFF
            if s.extended {
                guard let ext = b.readInteger(as: UInt32.self) else { return nil }
                field = ext
            }
            s.timestampField = field
            s.timestamp = fmt == 0 ? field : s.timestamp &+ field
            if s.partial != nil {
                // A new header before the previous message finished: that message is abandoned.
                bufferedBytes -= s.partial!.readableBytes
                s.partial = nil
            }
        } else if s.extended {
            // fmt 3 repeats the extended timestamp when the header it continues had one. Some encoders
            // omit it on continuation chunks, so there it is consumed only when it matches.
            guard let ext = b.getInteger(at: b.readerIndex, as: UInt32.self) else { return nil }
            if !continuing || ext == s.timestampField { b.moveReaderIndex(forwardBy: 4) }
            if !continuing { s.timestamp = s.timestamp &+ s.timestampField }
        } else if !continuing {
            s.timestamp = s.timestamp &+ s.timestampField
        }

        if !continuing {
            guard s.length <= maxMessageSize else { throw .messageTooLarge(s.length) }
        }
        let have = s.partial?.readableBytes ?? 0
        let take = min(chunkSize, s.length - have)
        guard var data = b.readSlice(length: take) else { return nil }

        if have + take == s.length {
            var payload: ByteBuffer
            if var partial = s.partial {
                partial.writeBuffer(&data)
                payload = partial
                bufferedBytes -= have
            } else {
                payload = data
            }
            s.partial = nil
            streams[csid] = s
            return (Message(typeID: s.typeID, streamID: s.streamID, timestamp: s.timestamp, payload: payload), b)
        }
        guard bufferedBytes + take <= maxBufferedBytes else { throw .bufferLimitExceeded(bufferedBytes + take) }
        bufferedBytes += take
        if s.partial == nil {
            // Sized for what has arrived, not for the declared length: a lying header costs nothing.
            s.partial = ByteBufferAllocator().buffer(capacity: min(s.length, chunkSize * 4))
        }
        s.partial!.writeBuffer(&data)
        streams[csid] = s
        return (nil, b)
    }
}
