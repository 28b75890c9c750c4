import AMF0
import NIOCore
import RTMP
@testable import RTMPBridge
import StreamHub
import Testing
import TestSupport

/// The command state machine, driven with messages and checked on the actions it returns.
@Suite struct RTMPSessionTests {
    static func command(_ name: String, _ txn: Double = 0, object: AMF0Value = .null, _ args: [AMF0Value] = [], stream: UInt32 = 0) -> Message {
        Command(name: name, transactionID: txn, object: object, arguments: args).message(streamID: stream)
    }

    static let connect = command("connect", 1, object: .object(["app": "live", "tcUrl": "rtmp://h/live?token=t1"]))

    static func sentCommands(_ actions: [RTMPSession.Action]) -> [String] {
        actions.compactMap {
            if case .send(let m, _) = $0, let c = try? Command(m) {
                return c.name == "onStatus" ? c.arguments.first?.objectValue?["code"]?.stringValue : c.name
            }
            return nil
        }
    }

    @Test func publishFlowAsFFmpegAndOBSSendIt() throws {
        var s = RTMPSession()
        let connected = try s.handle(Self.connect)
        #expect(connected.contains(.setOutgoingChunkSize(4096)))
        #expect(Self.sentCommands(connected) == ["_result"])
        #expect(s.connectQuery == "token=t1")
        #expect(Self.sentCommands(try s.handle(Self.command("releaseStream", 2, ["cam"]))) == ["_result"])
        #expect(Self.sentCommands(try s.handle(Self.command("FCPublish", 3, ["cam"]))) == ["_result"])
        #expect(Self.sentCommands(try s.handle(Self.command("createStream", 4))) == ["_result"])
        let publish = try s.handle(Self.command("publish", 0, ["cam?key=abc", "live"], stream: 1))
        #expect(publish == [.requestPublish(StreamKey(app: "live", stream: "cam")!, query: "token=t1&key=abc", streamID: 1)])
        #expect(Self.sentCommands(s.publishAccepted(streamID: 1, key: StreamKey(app: "live", stream: "cam")!)) == ["NetStream.Publish.Start"])
        // Metadata loses its @setDataFrame wrapper; media passes with its timestamp.
        var meta = ByteBuffer()
        for v: AMF0Value in ["@setDataFrame", "onMetaData", .ecmaArray(["width": 640])] { v.write(to: &meta) }
        guard case .media(.metadata, 0, let body)? = try s.handle(Message(type: .dataAMF0, streamID: 1, payload: meta)).first else {
            Issue.record("no metadata")
            return
        }
        #expect(try AMF0Value.parseAll(body) == ["onMetaData", .ecmaArray(["width": 640])])
        let video = Message(type: .video, streamID: 1, timestamp: 40, payload: ByteBuffer(bytes: [0x17, 1]))
        #expect(try s.handle(video) == [.media(.video, timestamp: 40, payload: ByteBuffer(bytes: [0x17, 1]))])
        // Media on a stream that is not publishing is ignored.
        #expect(try s.handle(Message(type: .video, streamID: 2, payload: ByteBuffer(bytes: [0x17]))).isEmpty)
        #expect(try s.handle(Self.command("FCUnpublish", 5, ["cam"])).first == .stopPublishing)
    }

    @Test func playFlowAndRejections() throws {
        var s = RTMPSession()
        _ = try s.handle(Self.connect)
        _ = try s.handle(Self.command("createStream", 2))
        #expect(try s.handle(Self.command("play", 0, ["cam"], stream: 1)) == [.requestPlay(StreamKey(app: "live", stream: "cam")!, query: "token=t1", streamID: 1)])
        // A token in the play name comes before the connect's.
        var named = RTMPSession()
        _ = try named.handle(Self.connect)
        _ = try named.handle(Self.command("createStream", 2))
        #expect(try named.handle(Self.command("play", 0, ["cam?token=p2"], stream: 1))
            == [.requestPlay(StreamKey(app: "live", stream: "cam")!, query: "token=p2&token=t1", streamID: 1)])
        #expect(StreamHub.token(inQuery: "token=p2&token=t1") == "p2")
        #expect(StreamHub.token(inQuery: "a=1&token=x%2Ey") == "x.y")
        #expect(StreamHub.token(inQuery: "tokens=1") == nil)
        let accepted = s.playAccepted(streamID: 1, key: StreamKey(app: "live", stream: "cam")!)
        #expect(Self.sentCommands(accepted) == ["NetStream.Play.Reset", "NetStream.Play.Start", "|RtmpSampleAccess"])
        let rejected = s.playRejected(streamID: 1, key: StreamKey(app: "live", stream: "gone")!)
        #expect(Self.sentCommands(rejected) == ["NetStream.Play.StreamNotFound"])
        if case .close? = rejected.last {} else { Issue.record("a rejected play closes") }
    }

    @Test(arguments: [
        (command("publish", 0, ["cam"], stream: 1), "publish before connect"),
        (command("play", 0, ["cam"], stream: 1), "play before connect"),
        (command("createStream", 2), "createStream before connect"),
        (command("FCPublish", 2, ["cam"]), "FCPublish before connect"),
        (command("connect", 1, object: .null), "connect without an app"),
    ] as [(Message, String)])
    func refusesOutOfOrderCommands(message: Message, why: String) {
        var s = RTMPSession()
        #expect(throws: RTMPError.malformedMessage(why)) { try s.handle(message) }
    }

    @Test func badNamesAreRefusedWithStatus() throws {
        var s = RTMPSession()
        _ = try s.handle(Self.connect)
        let actions = try s.handle(Self.command("publish", 0, ["../../etc"], stream: 1))
        #expect(Self.sentCommands(actions) == ["NetStream.Publish.BadName"])
        var t = RTMPSession()
        let bad = try t.handle(Self.command("connect", 1, object: .object(["app": "a b"])))
        #expect(Self.sentCommands(bad) == ["_error"])
    }

    @Test func aggregateMessagesAreSplit() throws {
        var s = RTMPSession()
        _ = try s.handle(Self.connect)
        _ = try s.handle(Self.command("createStream", 2))
        _ = try s.handle(Self.command("publish", 0, ["cam"], stream: 1))
        _ = s.publishAccepted(streamID: 1, key: StreamKey(app: "live", stream: "cam")!)
        // Two FLV tags (video at 1000, audio at 1020) inside one aggregate stamped 5000.
        var agg = ByteBuffer()
        for (type, ts, body) in [(UInt8(9), UInt32(1000), [UInt8](arrayLiteral: 0x17, 1, 0, 0, 0)), (8, 1020, [0xAF, 1, 9])] {
            agg.writeInteger(type)
            agg.writeInteger(UInt8(0)); agg.writeInteger(UInt16(body.count))
            agg.writeInteger(UInt8((ts >> 16) & 0xFF)); agg.writeInteger(UInt16(ts & 0xFFFF)); agg.writeInteger(UInt8(ts >> 24))
            agg.writeBytes([0, 0, 0])
            agg.writeBytes(body)
            agg.writeInteger(UInt32(11 + body.count))
        }
        let actions = try s.handle(Message(type: .aggregate, streamID: 1, timestamp: 5000, payload: agg))
        #expect(actions == [.media(.video, timestamp: 5000, payload: ByteBuffer(bytes: [0x17, 1, 0, 0, 0])),
                            .media(.audio, timestamp: 5020, payload: ByteBuffer(bytes: [0xAF, 1, 9]))])
        var truncated = agg
        truncated.moveWriterIndex(to: agg.writerIndex - 3)
        #expect(throws: RTMPError.malformedMessage("aggregate tag body truncated")) {
            try s.handle(Message(type: .aggregate, streamID: 1, payload: truncated))
        }
    }

    @Test func sessionSurvivesRandomCommands() {
        // Random well-formed commands in random order: every call returns actions or throws a named error.
        let names = ["connect", "createStream", "publish", "play", "deleteStream", "FCUnpublish", "closeStream", "releaseStream", "x"]
        var rng = SplitMix64(state: 3)
        for _ in 0..<300 {
            var s = RTMPSession()
            for _ in 0..<10 {
                let name = names.randomElement(using: &rng)!
                let object: AMF0Value = Bool.random(using: &rng) ? .object(["app": "live"]) : .null
                let args: [AMF0Value] = Bool.random(using: &rng) ? ["cam"] : []
                _ = try? s.handle(Self.command(name, Double(Int.random(in: 0...3, using: &rng)), object: object, args,
                                               stream: UInt32.random(in: 0...2, using: &rng)))
            }
        }
    }
}
