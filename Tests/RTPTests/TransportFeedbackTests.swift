import RTP
import Testing

@Suite struct TransportFeedbackTests {
    /// Base 100, 5 packets: received with deltas 4 and 300 ticks, one lost, a negative delta, then 0. Two-bit
    /// status vector chunk 1 1, then 01 10 00 10 01 00 00 (= 0xD890), deltas 04 | 01 2c | ff fe | 00.
    @Test func writesAndReadsAStatusVectorChunk() throws {
        let fb = TransportFeedback(senderSSRC: 1, mediaSSRC: 2, baseSequence: 100, referenceTime: -2, feedbackCount: 9,
                                   deltas: [4, 300, nil, -2, 0])
        var bytes: [UInt8] = []
        RTCPPacket.transportFeedback(fb).write(to: &bytes)
        #expect(bytes == [0x8F, 0xCD, 0x00, 0x06, 0, 0, 0, 1, 0, 0, 0, 2, 0x00, 0x64, 0x00, 0x05, 0xFF, 0xFF, 0xFE, 0x09,
                          0xD8, 0x90, 0x04, 0x01, 0x2C, 0xFF, 0xFE, 0x00])
        #expect(try RTCPPacket.parseCompound(bytes) == [.transportFeedback(fb)])
    }

    /// Run-length and one-bit chunks, as libwebrtc writes them, parse too.
    @Test func readsRunLengthAndOneBitChunks() throws {
        // 3 received (small) by run length, then 14 one-bit symbols of which the first and last are received.
        let body: [UInt8] = [0, 0, 0, 1, 0, 0, 0, 2, 0x00, 0x0A, 0x00, 0x11, 0x00, 0x00, 0x01, 0x00,
                             0x20, 0x03, 0xA0, 0x01, 1, 2, 3, 4, 5, 0, 0, 0]
        var bytes: [UInt8] = [0x8F, 0xCD, 0x00, UInt8(body.count / 4)]
        bytes += body
        guard case .transportFeedback(let fb)? = try RTCPPacket.parseCompound(bytes).first else { throw TestFailureRTP() }
        #expect(fb.baseSequence == 10 && fb.referenceTime == 1 && fb.deltas.count == 17)
        #expect(fb.deltas[0..<3] == [1, 2, 3] && fb.deltas[3] == 4 && fb.deltas[16] == 5)
        #expect(fb.deltas[4..<16].allSatisfy { $0 == nil })
    }

    @Test func truncatedFeedbackIsMalformed() {
        let bytes: [UInt8] = [0x8F, 0xCD, 0x00, 0x05, 0, 0, 0, 1, 0, 0, 0, 2, 0x00, 0x64, 0x00, 0x09, 0, 0, 0, 0, 0xD9, 0x84, 0x04, 0x01]
        #expect(throws: RTPError.malformed(packetType: 205)) { try RTCPPacket.parseCompound(bytes) }
    }

    @Test func findsAOneByteExtensionWithoutParsing() {
        var h = RTPHeader(payloadType: 96, sequenceNumber: 1, timestamp: 2, ssrc: 3)
        h.extensions = [.init(id: 2, value: [1, 2, 3]), .init(id: 3, value: [0xAB, 0xCD])]
        let bytes = RTPPacket(header: h, payload: [9][...]).write()
        #expect(RTPPacket.oneByteExtension(3, in: bytes).map(Array.init) == [0xAB, 0xCD])
        #expect(RTPPacket.oneByteExtension(5, in: bytes) == nil)
        #expect(RTPPacket.oneByteExtension(3, in: Array(bytes.prefix(14))) == nil, "cut packets are not read past their end")
    }
}

struct TestFailureRTP: Error {}
