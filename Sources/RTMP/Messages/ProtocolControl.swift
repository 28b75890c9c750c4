import NIOCore

/// Protocol control messages (RTMP 1.0 section 5.4) and user control events (section 6.2/7.1.7).
///
/// They are few and fixed-size, so one enum covers them; all travel on chunk stream 2, message stream 0.
public enum ProtocolControl: Sendable, Equatable {
    case setChunkSize(UInt32)
    case abort(chunkStreamID: UInt32)
    case acknowledgement(sequenceNumber: UInt32)
    case windowAcknowledgementSize(UInt32)
    case setPeerBandwidth(UInt32, limitType: UInt8)
    case userControl(UserControlEvent)

    /// Largest chunk size we accept from a peer. The field allows 2^31-1, but nothing sends more than 64 KiB
    /// in practice and a huge chunk size only helps an attacker keep us waiting for one chunk.
    public static let maxChunkSize: UInt32 = 0xFF_FFFF

    /// Decodes a control message; `nil` for message types that are not protocol control.
    public init?(_ message: Message) throws(RTMPError) {
        var p = message.payload
        switch message.type {
        case .setChunkSize:
            guard let v = p.readInteger(as: UInt32.self) else { throw .malformedMessage("Set Chunk Size shorter than 4 bytes") }
            guard v & 0x8000_0000 == 0, v >= 1, v <= Self.maxChunkSize else { throw .invalidChunkSize(v) }
            self = .setChunkSize(v)
        case .abort:
            guard let v = p.readInteger(as: UInt32.self) else { throw .malformedMessage("Abort shorter than 4 bytes") }
            self = .abort(chunkStreamID: v)
        case .acknowledgement:
            guard let v = p.readInteger(as: UInt32.self) else { throw .malformedMessage("Acknowledgement shorter than 4 bytes") }
            self = .acknowledgement(sequenceNumber: v)
        case .windowAcknowledgementSize:
            guard let v = p.readInteger(as: UInt32.self) else { throw .malformedMessage("Window Acknowledgement Size shorter than 4 bytes") }
            self = .windowAcknowledgementSize(v)
        case .setPeerBandwidth:
            guard let v = p.readInteger(as: UInt32.self), let t = p.readInteger(as: UInt8.self) else {
                throw .malformedMessage("Set Peer Bandwidth shorter than 5 bytes")
            }
            self = .setPeerBandwidth(v, limitType: t)
        case .userControl:
            self = .userControl(try UserControlEvent(parsing: &p))
        default:
            return nil
        }
    }

    public var message: Message {
        var p = ByteBufferAllocator().buffer(capacity: 10)
        let type: MessageType
        switch self {
        case .setChunkSize(let v): type = .setChunkSize; p.writeInteger(v & 0x7FFF_FFFF)
        case .abort(let c): type = .abort; p.writeInteger(c)
        case .acknowledgement(let s): type = .acknowledgement; p.writeInteger(s)
        case .windowAcknowledgementSize(let w): type = .windowAcknowledgementSize; p.writeInteger(w)
        case .setPeerBandwidth(let w, let t): type = .setPeerBandwidth; p.writeInteger(w); p.writeInteger(t)
        case .userControl(let e): type = .userControl; e.write(to: &p)
        }
        return Message(type: type, payload: p)
    }
}

/// User control events (RTMP 1.0 section 7.1.7).
public enum UserControlEvent: Sendable, Equatable {
    case streamBegin(streamID: UInt32)
    case streamEOF(streamID: UInt32)
    case streamDry(streamID: UInt32)
    case setBufferLength(streamID: UInt32, milliseconds: UInt32)
    case streamIsRecorded(streamID: UInt32)
    case pingRequest(timestamp: UInt32)
    case pingResponse(timestamp: UInt32)
    /// Event types we do not act on (for example Flash's SWF verification) are kept, not rejected.
    case other(type: UInt16, data: ByteBuffer)

    init(parsing p: inout ByteBuffer) throws(RTMPError) {
        guard let type = p.readInteger(as: UInt16.self) else { throw .malformedMessage("User Control shorter than 2 bytes") }
        func u32() throws(RTMPError) -> UInt32 {
            guard let v = p.readInteger(as: UInt32.self) else { throw .malformedMessage("User Control event \(type) truncated") }
            return v
        }
        switch type {
        case 0: self = .streamBegin(streamID: try u32())
        case 1: self = .streamEOF(streamID: try u32())
        case 2: self = .streamDry(streamID: try u32())
        case 3: let s = try u32(); self = .setBufferLength(streamID: s, milliseconds: try u32())
        case 4: self = .streamIsRecorded(streamID: try u32())
        case 6: self = .pingRequest(timestamp: try u32())
        case 7: self = .pingResponse(timestamp: try u32())
        default: self = .other(type: type, data: p)
        }
    }

    func write(to p: inout ByteBuffer) {
        switch self {
        case .streamBegin(let s): p.writeInteger(UInt16(0)); p.writeInteger(s)
        case .streamEOF(let s): p.writeInteger(UInt16(1)); p.writeInteger(s)
        case .streamDry(let s): p.writeInteger(UInt16(2)); p.writeInteger(s)
        case .setBufferLength(let s, let ms): p.writeInteger(UInt16(3)); p.writeInteger(s); p.writeInteger(ms)
        case .streamIsRecorded(let s): p.writeInteger(UInt16(4)); p.writeInteger(s)
        case .pingRequest(let t): p.writeInteger(UInt16(6)); p.writeInteger(t)
        case .pingResponse(let t): p.writeInteger(UInt16(7)); p.writeInteger(t)
        case .other(let type, var data): p.writeInteger(type); p.writeBuffer(&data)
        }
    }
}
