import AMF0
import NIOCore
import RTMP
import StreamHub

/// The NetConnection/NetStream command logic of one RTMP connection (RTMP 1.0 section 7.2), without I/O.
///
/// It takes reassembled messages and returns actions for the connection to carry out. Decisions that need
/// the hub or the authentication settings (may this stream be published? is it live?) come back as
/// requests; the connection answers them with ``publishAccepted(streamID:)`` and friends.
public struct RTMPSession: Sendable {
    public enum Action: Sendable, Equatable {
        /// Send a message on a chunk stream.
        case send(Message, chunkStream: UInt32)
        /// Switch our outgoing chunk size (after the Set Chunk Size message that announces it).
        case setOutgoingChunkSize(Int)
        case requestPublish(StreamKey, query: String, streamID: UInt32)
        case requestPlay(StreamKey, query: String, streamID: UInt32)
        case stopPublishing
        case stopPlaying
        case media(MediaFrame.Kind, timestamp: UInt32, payload: ByteBuffer)
        /// Close after sending what was queued, for the reason given (logged).
        case close(String)
    }

    /// Chunk streams we send on: control, commands, and media the way Flash servers lay them out.
    public enum ChunkStreams {
        public static let control: UInt32 = 2
        public static let command: UInt32 = 3
        public static let data: UInt32 = 5
        public static let audio: UInt32 = 6
        public static let video: UInt32 = 7
    }

    /// The chunk size we switch to after connect: fewer headers per video frame than the default 128.
    public static let outgoingChunkSize = 4096
    /// Window we ask the peer to acknowledge, and the bandwidth we announce (as Flash Media Server does).
    public static let windowSize: UInt32 = 2_500_000

    public private(set) var app: String?
    /// The query of the `connect` app or tcUrl ("live?token=x"), which some encoders use for credentials.
    public private(set) var connectQuery = ""
    public private(set) var tcUrl: String?
    public private(set) var flashVersion: String?
    public private(set) var publishingStreamID: UInt32?
    public private(set) var playingStreamID: UInt32?
    var nextStreamID: UInt32 = 1
    var pendingStreamIDs: Set<UInt32> = []

    public init() {}

    public var isConnected: Bool { app != nil }

    public mutating func handle(_ message: Message) throws(RTMPError) -> [Action] {
        switch message.type {
        case .commandAMF0, .commandAMF3:
            return try handle(command: Command(message), streamID: message.streamID)
        case .dataAMF0, .dataAMF3:
            return try handle(data: message)
        case .audio, .video:
            guard let sid = publishingStreamID, sid == message.streamID else { return [] }
            return [.media(message.type == .audio ? .audio : .video, timestamp: message.timestamp, payload: message.payload)]
        case .aggregate:
            guard let sid = publishingStreamID, sid == message.streamID else { return [] }
            return try splitAggregate(message)
        default:
            // Protocol control is handled by the connection; shared objects are not supported and ignored.
            return []
        }
    }

    mutating func handle(command c: Command, streamID: UInt32) throws(RTMPError) -> [Action] {
        switch c.name {
        case "connect":
            return try connect(c)
        case "releaseStream", "FCPublish", "FCUnpublish", "getStreamLength", "_checkbw":
            // Encoders send these before publishing; a plain _result keeps the ones that wait for it going.
            guard isConnected else { throw .malformedMessage("\(c.name) before connect") }
            var out: [Action] = []
            if c.name == "FCUnpublish", publishingStreamID != nil {
                publishingStreamID = nil
                out.append(.stopPublishing)
            }
            if c.transactionID != 0 { out.append(result(c.transactionID, .undefined)) }
            return out
        case "createStream":
            guard isConnected else { throw .malformedMessage("createStream before connect") }
            guard pendingStreamIDs.count < 8 else { throw .malformedMessage("too many createStream calls") }
            let id = nextStreamID
            nextStreamID += 1
            pendingStreamIDs.insert(id)
            return [result(c.transactionID, .number(Double(id)))]
        case "publish":
            guard isConnected, let app else { throw .malformedMessage("publish before connect") }
            guard publishingStreamID == nil, playingStreamID == nil else {
                throw .malformedMessage("publish on a connection that already publishes or plays")
            }
            guard let raw = c.arguments.first?.stringValue else { throw .malformedMessage("publish without a stream name") }
            let (name, query) = Self.splitQuery(raw)
            guard let key = StreamKey(app: app, stream: name) else {
                return [status(streamID, level: "error", code: "NetStream.Publish.BadName",
                               description: "invalid stream name"), .close("invalid stream name \"\(raw.prefix(64))\"")]
            }
            let fullQuery = [connectQuery, query].filter { !$0.isEmpty }.joined(separator: "&")
            return [.requestPublish(key, query: fullQuery, streamID: streamID)]
        case "play":
            guard isConnected, let app else { throw .malformedMessage("play before connect") }
            guard publishingStreamID == nil, playingStreamID == nil else {
                throw .malformedMessage("play on a connection that already publishes or plays")
            }
            guard let raw = c.arguments.first?.stringValue else { throw .malformedMessage("play without a stream name") }
            let (name, query) = Self.splitQuery(raw)
            guard let key = StreamKey(app: app, stream: name) else {
                return [status(streamID, level: "error", code: "NetStream.Play.StreamNotFound",
                               description: "invalid stream name"), .close("invalid stream name \"\(raw.prefix(64))\"")]
            }
            // The play name's query first: its token is the one meant for this stream.
            return [.requestPlay(key, query: [query, connectQuery].filter { !$0.isEmpty }.joined(separator: "&"), streamID: streamID)]
        case "deleteStream", "closeStream":
            var out: [Action] = []
            if publishingStreamID != nil {
                publishingStreamID = nil
                out.append(.stopPublishing)
            }
            if playingStreamID != nil {
                playingStreamID = nil
                out.append(.stopPlaying)
            }
            return out
        default:
            return []
        }
    }

    mutating func connect(_ c: Command) throws(RTMPError) -> [Action] {
        guard !isConnected else { throw .malformedMessage("second connect on one connection") }
        guard let props = c.object.objectValue, let rawApp = props["app"]?.stringValue else {
            throw .malformedMessage("connect without an app")
        }
        let (appName, query) = Self.splitQuery(rawApp.hasSuffix("/") ? String(rawApp.dropLast()) : rawApp)
        tcUrl = props["tcUrl"]?.stringValue
        flashVersion = props["flashVer"]?.stringValue
        var tcQuery = ""
        if let tcUrl, let q = tcUrl.firstIndex(of: "?") { tcQuery = String(tcUrl[tcUrl.index(after: q)...]) }
        connectQuery = [query, tcQuery].filter { !$0.isEmpty }.joined(separator: "&")
        guard StreamKey(app: appName, stream: "x") != nil else {
            return [
                .send(Command(name: "_error", transactionID: c.transactionID, object: .null, arguments: [
                    .object(["level": "error", "code": "NetConnection.Connect.Rejected",
                             "description": "invalid application name"]),
                ]).message(streamID: 0), chunkStream: ChunkStreams.command),
                .close("invalid app \"\(rawApp.prefix(64))\""),
            ]
        }
        app = appName
        let objectEncoding = props["objectEncoding"]?.numberValue ?? 0
        return [
            .send(ProtocolControl.windowAcknowledgementSize(Self.windowSize).message, chunkStream: ChunkStreams.control),
            .send(ProtocolControl.setPeerBandwidth(Self.windowSize, limitType: 2).message, chunkStream: ChunkStreams.control),
            .send(ProtocolControl.setChunkSize(UInt32(Self.outgoingChunkSize)).message, chunkStream: ChunkStreams.control),
            .setOutgoingChunkSize(Self.outgoingChunkSize),
            .send(Command(name: "_result", transactionID: c.transactionID,
                          object: .object(["fmsVer": "FMS/3,5,3,888", "capabilities": 127, "mode": 1]),
                          arguments: [.object(["level": "status", "code": "NetConnection.Connect.Success",
                                               "description": "Connection succeeded.",
                                               "objectEncoding": .number(objectEncoding)])])
                .message(streamID: 0), chunkStream: ChunkStreams.command),
        ]
    }

    /// The connection calls this when the hub and authentication accepted a publish.
    public mutating func publishAccepted(streamID: UInt32, key: StreamKey) -> [Action] {
        publishingStreamID = streamID
        return [
            .send(ProtocolControl.userControl(.streamBegin(streamID: streamID)).message, chunkStream: ChunkStreams.control),
            status(streamID, level: "status", code: "NetStream.Publish.Start", description: "\(key) is now published."),
        ]
    }

    /// A refused publish: `code` is `NetStream.Publish.BadName` (stream taken) or `NetStream.Publish.Denied` (credentials).
    public func publishRejected(streamID: UInt32, code: String, description: String) -> [Action] {
        [status(streamID, level: "error", code: code, description: description), .close(description)]
    }

    public mutating func playAccepted(streamID: UInt32, key: StreamKey) -> [Action] {
        playingStreamID = streamID
        var sampleAccess = ByteBufferAllocator().buffer(capacity: 32)
        AMF0Value.string("|RtmpSampleAccess").write(to: &sampleAccess)
        AMF0Value.boolean(true).write(to: &sampleAccess)
        AMF0Value.boolean(true).write(to: &sampleAccess)
        return [
            .send(ProtocolControl.userControl(.streamBegin(streamID: streamID)).message, chunkStream: ChunkStreams.control),
            status(streamID, level: "status", code: "NetStream.Play.Reset", description: "Playing and resetting \(key)."),
            status(streamID, level: "status", code: "NetStream.Play.Start", description: "Started playing \(key)."),
            .send(Message(type: .dataAMF0, streamID: streamID, payload: sampleAccess), chunkStream: ChunkStreams.data),
        ]
    }

    /// The stream needs a token this player did not give (or gave a wrong one).
    public func playRefused(streamID: UInt32, key: StreamKey, reason: String) -> [Action] {
        [status(streamID, level: "error", code: "NetStream.Play.Failed", description: "\(key): \(reason)"),
         .close("play of \(key) refused: \(reason)")]
    }

    public func playRejected(streamID: UInt32, key: StreamKey) -> [Action] {
        [status(streamID, level: "error", code: "NetStream.Play.StreamNotFound", description: "\(key) is not live."),
         .close("play of missing stream \(key)")]
    }

    /// `@setDataFrame onMetaData {...}` (or a bare `onMetaData`) becomes the stream's metadata body.
    mutating func handle(data message: Message) throws(RTMPError) -> [Action] {
        guard let sid = publishingStreamID, sid == message.streamID else { return [] }
        var payload = message.payload
        if message.type == .dataAMF3, payload.getInteger(at: payload.readerIndex, as: UInt8.self) == 0 {
            payload.moveReaderIndex(forwardBy: 1)
        }
        let values: [AMF0Value]
        do { values = try AMF0Value.parseAll(payload) } catch { throw .amf0(error) }
        var rest = values[...]
        if rest.first?.stringValue == "@setDataFrame" { rest = rest.dropFirst() }
        guard rest.first?.stringValue == "onMetaData", rest.count >= 2 else { return [] }
        var body = ByteBufferAllocator().buffer(capacity: payload.readableBytes)
        for v in rest { v.write(to: &body) }
        return [.media(.metadata, timestamp: message.timestamp, payload: body)]
    }

    /// An aggregate message (type 22) is a run of FLV tags with back pointers (RTMP 1.0 section 7.1.6);
    /// their timestamps are re-based on the aggregate's own.
    func splitAggregate(_ message: Message) throws(RTMPError) -> [Action] {
        var p = message.payload
        var out: [Action] = []
        var first: UInt32?
        while p.readableBytes > 0 {
            guard let type = p.readInteger(as: UInt8.self), let s0 = p.readInteger(as: UInt8.self),
                  let s1 = p.readInteger(as: UInt16.self), let t0 = p.readInteger(as: UInt8.self),
                  let t1 = p.readInteger(as: UInt16.self), let tx = p.readInteger(as: UInt8.self),
                  p.readBytes(length: 3) != nil else { throw .malformedMessage("aggregate tag header truncated") }
            let size = Int(s0) << 16 | Int(s1)
            let ts = UInt32(tx) << 24 | UInt32(t0) << 16 | UInt32(t1)
            guard let body = p.readSlice(length: size), p.readInteger(as: UInt32.self) != nil else {
                throw .malformedMessage("aggregate tag body truncated")
            }
            let base = first ?? ts
            first = base
            let stamp = message.timestamp &+ (ts &- base)
            switch type {
            case 8: out.append(.media(.audio, timestamp: stamp, payload: body))
            case 9: out.append(.media(.video, timestamp: stamp, payload: body))
            default: break
            }
        }
        return out
    }

    func result(_ transactionID: Double, _ value: AMF0Value) -> Action {
        .send(Command(name: "_result", transactionID: transactionID, object: .null, arguments: [value]).message(streamID: 0),
              chunkStream: ChunkStreams.command)
    }

    func status(_ streamID: UInt32, level: String, code: String, description: String) -> Action {
        .send(Command(name: "onStatus", transactionID: 0, object: .null, arguments: [
            .object(["level": .string(level), "code": .string(code), "description": .string(description)]),
        ]).message(streamID: streamID), chunkStream: ChunkStreams.command)
    }

    /// "name?key=value" -> ("name", "key=value").
    static func splitQuery(_ s: String) -> (String, String) {
        guard let q = s.firstIndex(of: "?") else { return (s, "") }
        return (String(s[..<q]), String(s[s.index(after: q)...]))
    }
}
