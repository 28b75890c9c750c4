import NIOCore
import Testing
@testable import MP4

@Suite struct ElementaryStreamDescriptorTests {
    /// ISO/IEC 14496-1 8.3.3: sizes are 7 bits per byte, most significant first, high bit = more follows.
    @Test(arguments: [
        (0, [UInt8(0x00)]),
        (127, [0x7F]),
        (128, [0x81, 0x00]),
        (200, [0x81, 0x48]),
        (16384, [0x81, 0x80, 0x00]),
    ])
    func expandableSize(size: Int, encoded: [UInt8]) throws {
        var out = ByteBuffer()
        ElementaryStreamDescriptor.writeDescriptor(tag: 5, to: &out) { $0.writeRepeatingByte(0xAA, count: size) }
        let written = bytes(out)
        #expect(written[0] == 5)
        #expect(Array(written[1..<(1 + encoded.count)]) == encoded)
        #expect(written.count == 1 + encoded.count + size)
        let parsed = try parseDescriptors(written[...])
        #expect(parsed.count == 1 && parsed[0].body.count == size)
    }

    @Test func wholeBoxWithFFmpegConfig() throws {
        var out = ByteBuffer()
        ElementaryStreamDescriptor(config: try ffmpegASC()).write(to: &out)
        let esds = try #require(try parseBoxes(bytes(out)).first)
        var expected = ByteBuffer()
        try ffmpegASC().write(to: &expected)
        #expect(try decoderSpecificInfo(esds) == bytes(expected))
    }
}
