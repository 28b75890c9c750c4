import AMF0
import Foundation
import NIOCore
import RTMP
import Testing

/// Parsers run on bytes ffmpeg really sent (see Fixtures/README.md).
@Suite struct CaptureTests {
    static func fixture(_ name: String) throws -> ByteBuffer {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil))
        return ByteBuffer(bytes: try Data(contentsOf: url))
    }

    @Test func ffmpegSignsC1WithTheDigestScheme() throws {
        let c0c1 = try Self.fixture("ffmpeg-publish.c0c1")
        let c1 = Array(c0c1.readableBytesView.dropFirst())
        #expect(Handshake.scheme(ofC1: c1) == .digest(base: 8))
        var rng = SystemRandomNumberGenerator()
        let (response, scheme) = try Handshake.serverResponse(c0c1: c0c1, time: 0, using: &rng)
        #expect(scheme == .digest(base: 8))
        let r = Array(response.readableBytesView)
        #expect(Handshake.verifyServerResponse(c1: c1, s1: Array(r[1..<1537]), s2: Array(r[1537...])))
    }

    @Test func ffmpegConnectReassembles() throws {
        let wire = try Self.fixture("ffmpeg-publish.connect")
        for step in [1, 3, wire.readableBytes] {
            var d = ChunkDecoder()
            var pending = ByteBuffer()
            var source = wire
            var messages: [Message] = []
            while source.readableBytes > 0 {
                var piece = source.readSlice(length: min(step, source.readableBytes))!
                pending.writeBuffer(&piece)
                while let m = try d.next(from: &pending) { messages.append(m) }
            }
            let connect = try #require(messages.first)
            #expect(connect.type == .commandAMF0)
            #expect(connect.payload.readableBytes == 140)
            let c = try Command(connect)
            #expect(c.name == "connect")
            #expect(c.transactionID == 1)
            #expect(c.object.objectValue?["app"] == "live")
        }
    }
}
