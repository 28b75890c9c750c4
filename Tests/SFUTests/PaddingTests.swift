import Testing
@testable import SFU

/// Padding-only RTP packets (a sender probing for bandwidth) are told apart from media (RFC 3550 5.1).
struct PaddingTests {
    /// A VP8 packet: version 2, `padding` bit as given, one-byte header extension (transport-cc) when `ext`.
    static func packet(padded: Bool, ext: Bool, payload: [UInt8], padding: Int) -> [UInt8] {
        var p: [UInt8] = [0x80 | (padded ? 0x20 : 0) | (ext ? 0x10 : 0), 96, 0x12, 0x34, 0, 0, 0x0B, 0xB8, 1, 2, 3, 4]
        if ext { p += [0xBE, 0xDE, 0, 1, 0x12, 0x00, 0x07, 0] }
        p += payload
        if padding > 0 { p += [UInt8](repeating: 0, count: padding - 1) + [UInt8(padding)] }
        return p
    }

    @Test func paddingAloneIsNotMedia() {
        #expect(Producer.isPaddingOnly(Self.packet(padded: true, ext: true, payload: [], padding: 224)))
        #expect(Producer.isPaddingOnly(Self.packet(padded: true, ext: false, payload: [], padding: 1)))
    }

    @Test func mediaWithPaddingOrWithoutIsMedia() {
        #expect(!Producer.isPaddingOnly(Self.packet(padded: true, ext: true, payload: [0x10, 0x00, 0x9D], padding: 4)))
        #expect(!Producer.isPaddingOnly(Self.packet(padded: false, ext: true, payload: [0x10, 0x00, 0x9D], padding: 0)))
        // The P bit on a packet too short to hold its header is not padding: it is garbage, left to the parser.
        #expect(!Producer.isPaddingOnly([0xB0, 96, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4, 0xBE]))
    }
}
