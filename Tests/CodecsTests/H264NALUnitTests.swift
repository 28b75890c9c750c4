import NIOCore
import Testing
import TestSupport
@testable import Codecs

@Suite struct H264NALUnitTests {
    /// small.key.au is ffmpeg's first keyframe: SEI (683 bytes, x264 version string) + IDR (1937 bytes).
    @Test func splitsCapturedKeyframe() throws {
        let au = try Fixture.buffer("small.key.au")
        let units = try H264.nalUnits(avcc: au, nalLengthSize: 4)
        #expect(units.map(\.readableBytes) == [683, 1937])
        #expect(units.compactMap { $0.getInteger(at: $0.readerIndex, as: UInt8.self).flatMap(H264.NALUnitType.init(header:)) } == [.sei, .idr])
        #expect(au.readableBytes == 2628)   // input not consumed
    }

    @Test func annexBOfCapturedKeyframe() throws {
        let bytes = try Fixture.bytes("small.key.au")
        var out = ByteBuffer()
        try H264.annexB(avcc: ByteBuffer(bytes: bytes), nalLengthSize: 4, into: &out)
        // 4-byte lengths become 4-byte start codes: same size, same payload.
        var expected = bytes
        expected.replaceSubrange(0..<4, with: [0, 0, 0, 1])
        expected.replaceSubrange(687..<691, with: [0, 0, 0, 1])
        #expect(Array(out.readableBytesView) == expected)
    }

    @Test func annexBAppendsToExistingContent() throws {
        var out = ByteBuffer(bytes: [0x47])
        try H264.annexB(avcc: ByteBuffer(hex: "0109" + "000265b8"), nalLengthSize: 1, into: &out)
        #expect(Array(out.readableBytesView) == [0x47, 0, 0, 0, 1, 0x09, 0, 0, 0, 1, 0x65, 0xB8])
    }

    @Test func twoByteLengthsAndEmptyUnits() throws {
        let units = try H264.nalUnits(avcc: ByteBuffer(hex: "00020910" + "0000" + "000341aabb"), nalLengthSize: 2)
        #expect(units.map { Array($0.readableBytesView) } == [[0x09, 0x10], [0x41, 0xAA, 0xBB]])
        #expect(try H264.nalUnits(avcc: ByteBuffer(), nalLengthSize: 4).isEmpty)
    }

    @Test func nalUnitTypeFromHeader() {
        #expect(H264.NALUnitType(header: 0x65) == .idr)
        #expect(H264.NALUnitType(header: 0x41) == .nonIDR)
        #expect(H264.NALUnitType(header: 0x67) == .sps)
        #expect(H264.NALUnitType(header: 0x68) == .pps)
        #expect(H264.NALUnitType(header: 0x06) == .sei)
        #expect(H264.NALUnitType(header: 0x09) == .aud)
        #expect(H264.NALUnitType(header: 0x00) == nil)
        #expect(H264.NALUnitType(header: 0x18) == nil)
    }

    struct Malformed: Sendable, CustomTestStringConvertible {
        let name: String
        let hex: String
        let lengthSize: Int
        let error: CodecError
        var testDescription: String { name }
    }

    static let malformed: [Malformed] = [
        .init(name: "length size 3", hex: "00000165", lengthSize: 3, error: .invalid("nalLengthSize 3")),
        .init(name: "length size 0", hex: "", lengthSize: 0, error: .invalid("nalLengthSize 0")),
        .init(name: "cut length prefix", hex: "000000", lengthSize: 4, error: .truncated("NAL unit length")),
        .init(name: "length past end", hex: "0000000565", lengthSize: 4, error: .truncated("NAL unit")),
        .init(name: "huge length", hex: "ffffffff65", lengthSize: 4, error: .truncated("NAL unit")),
        .init(name: "second unit cut", hex: "000165" + "0002", lengthSize: 2, error: .truncated("NAL unit")),
        .init(name: "trailing byte", hex: "000000016500", lengthSize: 4, error: .truncated("NAL unit length")),
    ]

    @Test(arguments: malformed)
    func rejectsMalformed(_ vector: Malformed) {
        #expect(throws: vector.error) {
            try H264.nalUnits(avcc: ByteBuffer(hex: vector.hex), nalLengthSize: vector.lengthSize)
        }
        var out = ByteBuffer(bytes: [0xAA])
        #expect(throws: vector.error) {
            try H264.annexB(avcc: ByteBuffer(hex: vector.hex), nalLengthSize: vector.lengthSize, into: &out)
        }
        #expect(Array(out.readableBytesView) == [0xAA])   // nothing half-written
    }

    /// A keyframe cut anywhere inside a NAL unit is rejected, never partially returned.
    @Test func everyCutOfCapturedKeyframe() throws {
        let bytes = try Fixture.bytes("small.key.au")
        for length in stride(from: 1, to: bytes.count, by: 7) where length != 687 {
            #expect(throws: CodecError.self) {
                try H264.nalUnits(avcc: ByteBuffer(bytes: bytes.prefix(length)), nalLengthSize: 4)
            }
        }
        #expect(try H264.nalUnits(avcc: ByteBuffer(bytes: bytes.prefix(687)), nalLengthSize: 4).count == 1)
    }
}
