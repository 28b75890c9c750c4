import NIOCore
import RTMP
import Testing

@Suite struct ChunkTests {
    static func buffer(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

    static func payload(_ n: Int, seed: UInt8 = 0) -> ByteBuffer {
        ByteBuffer(bytes: (0..<n).map { UInt8(truncatingIfNeeded: $0 &+ Int(seed)) })
    }

    /// Decodes everything, feeding `input` in pieces of `step` bytes (1 = byte by byte).
    static func decodeAll(_ input: ByteBuffer, step: Int, decoder: inout ChunkDecoder) throws -> [Message] {
        var pending = ByteBuffer()
        var source = input
        var out: [Message] = []
        while source.readableBytes > 0 {
            var piece = source.readSlice(length: min(step, source.readableBytes))!
            pending.writeBuffer(&piece)
            while let m = try decoder.next(from: &pending) { out.append(m) }
        }
        #expect(pending.readableBytes == 0)
        return out
    }

    /// The example of RTMP 1.0 section 5.3.2.1: four audio messages on one chunk stream, each 32 bytes with
    /// timestamp deltas of 33 ms, sent with header types 0, 2, 3, 3.
    @Test func specExampleSameSizeAudio() throws {
        var input = ByteBuffer()
        input.writeBytes([0x03, 0x00, 0x03, 0xE8, 0x00, 0x00, 0x20, 0x08, 0x01, 0x00, 0x00, 0x00])  // fmt 0, ts 1000
        input.writeImmutableBuffer(Self.payload(32))
        input.writeBytes([0x83, 0x00, 0x00, 0x21])  // fmt 2, delta 33
        input.writeImmutableBuffer(Self.payload(32, seed: 1))
        input.writeBytes([0xC3])  // fmt 3
        input.writeImmutableBuffer(Self.payload(32, seed: 2))
        input.writeBytes([0xC3])
        input.writeImmutableBuffer(Self.payload(32, seed: 3))
        for step in [1, 7, 1000] {
            var d = ChunkDecoder()
            let messages = try Self.decodeAll(input, step: step, decoder: &d)
            #expect(messages.map(\.timestamp) == [1000, 1033, 1066, 1099])
            #expect(messages.map(\.typeID) == [8, 8, 8, 8])
            #expect(messages.map(\.streamID) == [1, 1, 1, 1])
            #expect(messages[3].payload == Self.payload(32, seed: 3))
        }
    }

    /// Section 5.3.2.2: one 307-byte video message split into chunks of 128 (types 0, 3, 3).
    @Test func specExampleSplitMessage() throws {
        let body = Self.payload(307)
        var input = ByteBuffer()
        input.writeBytes([0x04, 0x00, 0x03, 0xE8, 0x00, 0x01, 0x33, 0x09, 0x01, 0x00, 0x00, 0x00])
        input.writeImmutableBuffer(body.getSlice(at: 0, length: 128)!)
        input.writeBytes([0xC4])
        input.writeImmutableBuffer(body.getSlice(at: 128, length: 128)!)
        input.writeBytes([0xC4])
        input.writeImmutableBuffer(body.getSlice(at: 256, length: 51)!)
        var d = ChunkDecoder()
        let messages = try Self.decodeAll(input, step: 1, decoder: &d)
        #expect(messages.count == 1)
        #expect(messages[0].payload == body)
        #expect(messages[0].timestamp == 1000)
        #expect(d.bufferedBytes == 0)
    }

    @Test(arguments: [128, 1, 4096, 65536])
    func encoderRoundTripsInterleavedStreams(chunkSize: Int) throws {
        var enc = ChunkEncoder()
        var dec = ChunkDecoder()
        var wire = ByteBuffer()
        // Announced at the old size, then used: the order a real peer must follow.
        enc.write(ProtocolControl.setChunkSize(UInt32(chunkSize)).message, chunkStreamID: 2, to: &wire)
        enc.chunkSize = chunkSize
        var sent: [Message] = []
        // Timestamps cross the 24-bit limit to exercise extended timestamps on every header type.
        let stamps: [UInt32] = [0, 40, 80, 0xFF_FFF0, 0x100_0000, 0x100_0028, UInt32.max]
        for (i, ts) in stamps.enumerated() {
            let video = Message(type: .video, streamID: 1, timestamp: ts, payload: Self.payload(300 + i * 1000, seed: UInt8(i)))
            let audio = Message(type: .audio, streamID: 1, timestamp: ts &+ 3, payload: Self.payload(20 + i))
            enc.write(video, chunkStreamID: 7, to: &wire)
            enc.write(audio, chunkStreamID: 6, to: &wire)
            sent += [video, audio]
        }
        let empty = Message(type: .dataAMF0, streamID: 1, timestamp: 5, payload: ByteBuffer())
        enc.write(empty, chunkStreamID: 320, to: &wire)  // a 3-byte basic header
        sent.append(empty)
        let got = try Self.decodeAll(wire, step: 13, decoder: &dec).filter { $0.type != .setChunkSize }
        #expect(got == sent)
    }

    @Test func fmt3WithoutRepeatedExtendedTimestampIsAccepted() throws {
        // Some encoders omit the extended timestamp on continuation chunks; the decoder must not eat data.
        var input = ByteBuffer()
        input.writeBytes([0x06, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x82, 0x08, 0x01, 0x00, 0x00, 0x00])
        input.writeInteger(UInt32(0x0123_4567))
        input.writeImmutableBuffer(Self.payload(128))
        input.writeBytes([0xC6])
        input.writeImmutableBuffer(Self.payload(2, seed: 128))
        // The decoder tells a repeated timestamp from data by peeking 4 bytes: more traffic must follow.
        input.writeBytes([0x02, 0, 0, 0, 0, 0, 4, 0x05, 0, 0, 0, 0, 0, 0, 0x10, 0])
        var d = ChunkDecoder()
        let m = try Self.decodeAll(input, step: 1, decoder: &d)
        #expect(m.count == 2)
        #expect(m[0].timestamp == 0x0123_4567)
        #expect(m[0].payload == Self.payload(130))
    }

    @Test func abortDiscardsPartialMessage() throws {
        var input = ByteBuffer()
        input.writeBytes([0x04, 0, 0, 0, 0x00, 0x01, 0x00, 0x09, 1, 0, 0, 0])
        input.writeImmutableBuffer(Self.payload(128))
        input.writeBytes([0x02, 0, 0, 0, 0, 0, 4, 0x02, 0, 0, 0, 0, 0, 0, 0, 4])  // Abort chunk stream 4
        input.writeBytes([0x04, 0, 0, 10, 0, 0, 2, 0x09, 1, 0, 0, 0, 0xAA, 0xBB])
        var d = ChunkDecoder()
        let m = try Self.decodeAll(input, step: 5, decoder: &d)
        #expect(m.map(\.typeID) == [2, 9])
        #expect(m[1].payload == ByteBuffer(bytes: [0xAA, 0xBB]))
        #expect(d.bufferedBytes == 0)
    }

    static func setChunkSize(_ v: UInt32) -> ByteBuffer {
        var b = ByteBuffer(bytes: [0x02, 0, 0, 0, 0, 0, 4, 0x01, 0, 0, 0, 0])
        b.writeInteger(v)
        return b
    }

    @Test(arguments: [
        (setChunkSize(0), RTMPError.invalidChunkSize(0)),
        (setChunkSize(0x8000_0000), .invalidChunkSize(0x8000_0000)),
        (setChunkSize(0x7FFF_FFFF), .invalidChunkSize(0x7FFF_FFFF)),
        (buffer([0x44, 0, 0, 0, 0, 0, 10, 9]), .missingPreviousHeader(chunkStream: 4)),
        (buffer([0xC5]), .missingPreviousHeader(chunkStream: 5)),
        // A 16 MB message length: refused at the header, before any of it is buffered.
        (buffer([0x04, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0x09, 1, 0, 0, 0]), .messageTooLarge(0xFF_FFFF)),
        (buffer([0x02, 0, 0, 0, 0, 0, 2, 0x01, 0, 0, 0, 0, 0, 0]), .malformedMessage("Set Chunk Size shorter than 4 bytes")),
    ] as [(ByteBuffer, RTMPError)])
    func rejectsMalformed(input: ByteBuffer, expected: RTMPError) {
        var d = ChunkDecoder()
        var b = input
        #expect(throws: expected) { while try d.next(from: &b) != nil {} }
    }

    @Test func capsBufferedBytesAcrossChunkStreams() {
        // Many chunk streams each holding a partial message: the per-connection total is what runs out.
        var d = ChunkDecoder(maxMessageSize: 1 << 20, maxBufferedBytes: 4096, maxChunkStreams: 64)
        var b = ByteBuffer()
        for csid in 3..<60 {
            b.writeBytes([UInt8(csid), 0, 0, 0, 0x01, 0, 0, 0x09, 1, 0, 0, 0])
            b.writeImmutableBuffer(Self.payload(128))
        }
        #expect(throws: RTMPError.bufferLimitExceeded(4096 + 128)) { while try d.next(from: &b) != nil {} }
    }

    @Test func capsChunkStreamCount() {
        var d = ChunkDecoder(maxChunkStreams: 4)
        var b = ByteBuffer()
        for csid in 3..<10 { b.writeBytes([UInt8(csid), 0, 0, 0, 0, 0, 1, 0x09, 1, 0, 0, 0, 0xEE]) }
        #expect(throws: RTMPError.tooManyChunkStreams) { while try d.next(from: &b) != nil {} }
    }

    @Test func truncatedChunksWaitWithoutConsuming() throws {
        var d = ChunkDecoder()
        for cut in [1, 5, 11, 12, 30] {
            var b = ByteBuffer(bytes: [0x04, 0, 0, 0, 0, 0, 40, 0x09, 1, 0, 0, 0] + [UInt8](repeating: 7, count: 40))
            b.moveWriterIndex(to: cut)
            #expect(try d.next(from: &b) == nil)
            #expect(b.readerIndex == 0)
        }
    }
}

@Suite struct StandaloneEncodingTests {
    @Test func standaloneChunksDecodeAfterOtherHeaders() throws {
        // A peer that has seen type 0 and 1 headers on chunk stream 7 still decodes shared type 0 encodings.
        // (The stateful encoder must not be used on that chunk stream afterwards: its delta state is stale.)
        var enc = ChunkEncoder()
        enc.chunkSize = 4096
        var wire = ByteBuffer()
        enc.write(ProtocolControl.setChunkSize(4096).message, chunkStreamID: 2, to: &wire)
        var sent: [Message] = []
        for (i, ts) in ([0, 40, 80, 0x100_0000 + 5] as [UInt32]).enumerated() {
            let m = Message(type: .video, streamID: 1, timestamp: ts, payload: ChunkTests.payload(9000 + i, seed: UInt8(i)))
            sent.append(m)
            if i < 2 {
                enc.write(m, chunkStreamID: 7, to: &wire)
            } else {
                wire.writeImmutableBuffer(ChunkEncoder.encodeStandalone(m, chunkStreamID: 7, chunkSize: 4096))
            }
        }
        var d = ChunkDecoder()
        let got = try ChunkTests.decodeAll(wire, step: 100, decoder: &d).filter { $0.type == .video }
        #expect(got == sent)
    }
}
