import AMF0
import NIOCore
import RTMP
import Testing

@Suite struct MessageTests {
    @Test(arguments: [
        ProtocolControl.setChunkSize(4096), .abort(chunkStreamID: 5), .acknowledgement(sequenceNumber: 123_456),
        .windowAcknowledgementSize(2_500_000), .setPeerBandwidth(2_500_000, limitType: 2),
        .userControl(.streamBegin(streamID: 1)), .userControl(.setBufferLength(streamID: 1, milliseconds: 3000)),
        .userControl(.pingRequest(timestamp: 99)), .userControl(.pingResponse(timestamp: 99)),
    ])
    func controlRoundTrips(control: ProtocolControl) throws {
        #expect(try ProtocolControl(control.message) == control)
    }

    @Test func mediaIsNotControl() throws {
        #expect(try ProtocolControl(Message(type: .video, payload: ByteBuffer(bytes: [0x17]))) == nil)
    }

    @Test(arguments: [
        (MessageType.acknowledgement, [0, 1], "Acknowledgement shorter than 4 bytes"),
        (.windowAcknowledgementSize, [], "Window Acknowledgement Size shorter than 4 bytes"),
        (.setPeerBandwidth, [0, 0, 0, 1], "Set Peer Bandwidth shorter than 5 bytes"),
        (.userControl, [0], "User Control shorter than 2 bytes"),
        (.userControl, [0, 3, 0, 0, 0, 1], "User Control event 3 truncated"),
    ] as [(MessageType, [UInt8], String)])
    func rejectsShortControl(type: MessageType, bytes: [UInt8], why: String) {
        #expect(throws: RTMPError.malformedMessage(why)) {
            try ProtocolControl(Message(type: type, payload: ByteBuffer(bytes: bytes)))
        }
    }

    @Test func commandRoundTrip() throws {
        let c = Command(name: "publish", transactionID: 5, object: .null, arguments: ["cam1?key=s", "live"])
        let parsed = try Command(c.message(streamID: 1))
        #expect(parsed == c)
    }

    @Test func amf3CommandWithFormatByte() throws {
        var m = Command(name: "play", transactionID: 0, arguments: ["x"]).message(streamID: 1)
        var p = ByteBuffer(bytes: [0])
        p.writeImmutableBuffer(m.payload)
        m = Message(type: .commandAMF3, streamID: 1, payload: p)
        #expect(try Command(m).name == "play")
    }

    @Test func commandErrors() {
        #expect(throws: RTMPError.malformedMessage("command without a name")) {
            try Command(Message(type: .commandAMF0, payload: ByteBuffer(bytes: [0x05])))
        }
        #expect(throws: RTMPError.amf0(.unknownType(0x42))) {
            try Command(Message(type: .commandAMF0, payload: ByteBuffer(bytes: [0x02, 0, 1, 0x61, 0x42])))
        }
    }
}
