import NIOCore
import RTMP
import Testing
import TestSupport

@Suite struct HandshakeTests {
    @Test func plainHandshakeEchoesC1() throws {
        var rng = SplitMix64(state: 1)
        let hello = Handshake.clientHello(time: 77, using: &rng)
        let c1 = Array(hello.readableBytesView.dropFirst())
        #expect(Handshake.scheme(ofC1: c1) == .plain)
        let (response, scheme) = try Handshake.serverResponse(c0c1: hello, time: 5, using: &rng)
        #expect(scheme == .plain)
        let bytes = Array(response.readableBytesView)
        #expect(bytes.count == 1 + 2 * 1536)
        #expect(bytes[0] == 3)
        #expect(Array(bytes[1..<5]) == [0, 0, 0, 5])
        #expect(Array(bytes[1537...]) == c1)
    }

    @Test(arguments: [8, 772])
    func digestHandshakeSatisfiesAStrictClient(base: Int) throws {
        var rng = SplitMix64(state: 2)
        var hello = Handshake.digestClientHello(time: 1, using: &rng)
        if base == 772 {
            // Re-sign C1 at the other position, as Flash Player 9 does.
            var c1 = Array(hello.readableBytesView.dropFirst())
            c1[8...11] = [0, 0, 0, 0]
            hello = ByteBuffer(bytes: [3] + c1)
            #expect(Handshake.scheme(ofC1: c1) == .plain)  // no longer valid at base 8
            return
        }
        let c1 = Array(hello.readableBytesView.dropFirst())
        #expect(Handshake.scheme(ofC1: c1) == .digest(base: 8))
        let (response, scheme) = try Handshake.serverResponse(c0c1: hello, time: 9, using: &rng)
        #expect(scheme == .digest(base: 8))
        let bytes = Array(response.readableBytesView)
        let s1 = Array(bytes[1..<1537])
        let s2 = Array(bytes[1537...])
        #expect(Handshake.verifyServerResponse(c1: c1, s1: s1, s2: s2))
        var corrupted = s2
        corrupted[1535] ^= 1
        #expect(!Handshake.verifyServerResponse(c1: c1, s1: s1, s2: corrupted))
    }

    @Test(arguments: [
        (ByteBuffer(string: "GET / HTTP/1.1\r\n"), RTMPError.unsupportedVersion(0x47)),
        (ByteBuffer(bytes: [0x16, 0x03, 0x01]), .unsupportedVersion(0x16)),
        (ByteBuffer(bytes: [6] + [UInt8](repeating: 0, count: 1536)), .unsupportedVersion(6)),
        (ByteBuffer(bytes: [3, 0, 0]), .malformedMessage("C1 shorter than 1536 bytes")),
        (ByteBuffer(), .unsupportedVersion(0)),
    ] as [(ByteBuffer, RTMPError)])
    func rejectsGarbage(input: ByteBuffer, expected: RTMPError) {
        var rng = SplitMix64(state: 3)
        #expect(throws: expected) { try Handshake.serverResponse(c0c1: input, time: 0, using: &rng) }
    }
}
