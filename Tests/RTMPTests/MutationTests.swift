import AMF0
import Foundation
import NIOCore
import RTMP
import Testing
import TestSupport

/// Deterministic mutation of real and encoder-made chunk streams: the decoder and the command parser return or
/// throw, never trap, hang or hold more than their limits. A failure shows up as a crashed test process.
@Suite struct RTMPMutationTests {
    /// What a publisher's connection carries after the handshake: ffmpeg's captured connect, then commands and
    /// media from our encoder at a changed chunk size.
    static func session() throws -> [UInt8] {
        var wire = try CaptureTests.fixture("ffmpeg-publish.connect")
        var enc = ChunkEncoder()
        enc.write(Command(name: "createStream", transactionID: 2).message(streamID: 0), chunkStreamID: 3, to: &wire)
        enc.write(Command(name: "publish", transactionID: 0, arguments: ["cam", "live"]).message(streamID: 1), chunkStreamID: 3, to: &wire)
        enc.write(ProtocolControl.setChunkSize(200).message, chunkStreamID: 2, to: &wire)
        enc.chunkSize = 200
        for i in 0..<20 {
            let body = ByteBuffer(bytes: [i % 10 == 0 ? 0x17 : 0x27, 1, 0, 0, 0] + [UInt8](repeating: UInt8(i), count: 150 + i * 37))
            enc.write(Message(type: .video, streamID: 1, timestamp: UInt32(i * 40), payload: body), chunkStreamID: 7, to: &wire)
        }
        return Array(wire.readableBytesView)
    }

    @Test func chunkDecoderSurvivesCorruption() throws {
        let original = try Self.session()
        var rng = SplitMix64(state: 11)
        var messages = 0
        var errors = 0
        for round in 0..<400 {
            let bytes = rng.mutate(original, count: 1 + round % 12)
            var d = ChunkDecoder(maxMessageSize: 64 << 10, maxBufferedBytes: 128 << 10, maxChunkStreams: 16)
            var input = ByteBuffer(bytes: bytes)
            do {
                while let m = try d.next(from: &input) {
                    messages += 1
                    if m.type == .commandAMF0 { _ = try? Command(m) }
                    _ = try? ProtocolControl(m)
                    #expect(d.bufferedBytes <= 128 << 10)
                }
            } catch {
                errors += 1
            }
        }
        // Both outcomes happen: the corpus exercises the accept and the reject paths.
        #expect(messages > 1000 && errors > 10)
    }

    @Test func amf0SurvivesCorruption() throws {
        var connect = try CaptureTests.fixture("ffmpeg-publish.connect")
        var d = ChunkDecoder()
        let body = Array(try #require(try d.next(from: &connect)).payload.readableBytesView)
        var rng = SplitMix64(state: 5)
        for _ in 0..<2000 {
            _ = try? AMF0Value.parseAll(ByteBuffer(bytes: rng.mutate(body, count: 3)))
        }
    }

    @Test func handshakeSurvivesCorruption() throws {
        let c0c1 = Array(try CaptureTests.fixture("ffmpeg-publish.c0c1").readableBytesView)
        var rng = SplitMix64(state: 9)
        for _ in 0..<200 {
            _ = try? Handshake.serverResponse(c0c1: ByteBuffer(bytes: rng.mutate(c0c1, count: 4)), time: 0, using: &rng)
        }
    }
}
