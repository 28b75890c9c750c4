import AMF0
import NIOCore
import Testing
import TestSupport

@Suite struct AMF0ValueTests {
    static func bytes(_ hex: String) -> ByteBuffer { ByteBuffer(hex: hex) }

    static func encode(_ v: AMF0Value) -> ByteBuffer {
        var b = ByteBuffer()
        v.write(to: &b)
        return b
    }

    /// Encodings from the AMF0 specification's type table (section 2), written out by hand.
    @Test(arguments: [
        ("00 3FF0000000000000", AMF0Value.number(1)),
        ("00 C004000000000000", .number(-2.5)),
        ("01 01", .boolean(true)),
        ("01 00", .boolean(false)),
        ("02 0005 68656C6C6F", .string("hello")),
        ("02 0000", .string("")),
        ("05", .null),
        ("06", .undefined),
        ("0D", .unsupported),
        ("03 0001 61 0040 00000000000000 000009", .object(["a": .number(2)])),
        ("08 00000001 0001 62 0101 000009", .ecmaArray(["b": .boolean(true)])),
        ("0A 00000002 05 0200017A", .strictArray([.null, .string("z")])),
        ("0B 4072C00000000000 0000", .date(300)),
    ] as [(String, AMF0Value)])
    func decodesSpecEncodings(hex: String, expected: AMF0Value) throws {
        var b = Self.bytes(hex)
        #expect(try AMF0Value(parsing: &b) == expected)
        #expect(b.readableBytes == 0)
    }

    @Test func longStringAndXMLDecode() throws {
        var b = Self.bytes("0C 00000003 616263 0F 00000002 3C3E")
        #expect(try AMF0Value(parsing: &b) == .string("abc"))
        #expect(try AMF0Value(parsing: &b) == .xmlDocument("<>"))
    }

    @Test(arguments: [
        AMF0Value.number(1234.5), .boolean(true), .string("live"), .null, .undefined,
        .object(["app": "live", "tcUrl": "rtmp://127.0.0.1/live", "fpad": false, "audioCodecs": 3191]),
        .ecmaArray(["duration": 0, "width": 640, "height": 360, "encoder": "Lavf59.27.100"]),
        .strictArray([1, "two", .object(["three": 3])]),
        .date(1_700_000_000_000),
        .string(String(repeating: "x", count: 70_000)),
    ])
    func roundTrips(value: AMF0Value) throws {
        var b = Self.encode(value)
        #expect(try AMF0Value(parsing: &b) == value)
        #expect(b.readableBytes == 0)
    }

    @Test func longStringsUseTheLongMarker() {
        let b = Self.encode(.string(String(repeating: "y", count: 65_536)))
        #expect(b.getInteger(at: 0, as: UInt8.self) == 0x0C)
    }

    /// The `connect` command body ffmpeg 5.1 sends, captured from `ffmpeg ... -f flv rtmp://127.0.0.1:19350/live/cam1`
    /// (the same capture as Tests/RTMPTests/Fixtures/ffmpeg-publish.connect, with the chunk header removed).
    @Test func decodesFFmpegConnect() throws {
        let body = Self.bytes("""
            020007636f6e6e656374003ff00000000000000300036170700200046c697665
            00047479706502000a6e6f6e707269766174650008666c617368566572020024
            464d4c452f332e302028636f6d70617469626c653b204c61766635392e32372e
            313030290005746355726c02001b72746d703a2f2f3132372e302e302e313a31
            393335302f6c697665000009
            """)
        let values = try AMF0Value.parseAll(body)
        #expect(values.count == 3)
        #expect(values[0] == "connect")
        #expect(values[1] == 1)
        let o = try #require(values[2].objectValue)
        #expect(o["app"] == "live")
        #expect(o["tcUrl"] == "rtmp://127.0.0.1:19350/live")
        #expect(o["flashVer"]?.stringValue?.hasPrefix("FMLE/3.0") == true)
        #expect(o.entries.map(\.key) == ["app", "type", "flashVer", "tcUrl"])
    }

    @Test(arguments: [
        ("", AMF0Error.truncated("type marker")),
        ("00 3FF0", .truncated("number")),
        ("01", .truncated("boolean")),
        ("02 00", .truncated("string length")),
        ("02 0010 6162", .truncated("string bytes")),
        ("0C 7FFFFFFF 00", .truncated("string bytes")),
        ("03 0001 61", .truncated("type marker")),
        ("03 0001 61 05", .truncated("string length")),
        ("03 0000", .truncated("object end")),
        ("08 000000", .truncated("ECMA array count")),
        ("0A FFFFFFFF 05", .truncated("strict array elements")),
        ("0B 0000", .truncated("date")),
        ("09", .unexpectedObjectEnd),
        ("12", .unknownType(0x12)),
        ("FF", .unknownType(0xFF)),
        ("07 0001", .unsupportedType(0x07)),
        ("10 0001 41 000009", .unsupportedType(0x10)),
        ("11 01", .unsupportedType(0x11)),
        ("04", .unsupportedType(0x04)),
    ] as [(String, AMF0Error)])
    func rejectsMalformed(hex: String, expected: AMF0Error) {
        var b = Self.bytes(hex)
        #expect(throws: expected) { try AMF0Value(parsing: &b) }
    }

    @Test func rejectsDeepNesting() {
        var b = ByteBuffer()
        for _ in 0..<100 { b.writeBytes([0x0A, 0, 0, 0, 1]) }  // strict arrays of one element, nested
        b.writeInteger(UInt8(0x05))
        #expect(throws: AMF0Error.nestingTooDeep) { try AMF0Value(parsing: &b) }
    }

    @Test func objectSubscriptSetsAndRemoves() {
        var o: AMF0Object = ["a": 1]
        o["b"] = "x"
        o["a"] = 2
        #expect(o.entries.map(\.key) == ["a", "b"])
        #expect(o["a"] == 2)
        o["a"] = nil
        #expect(o.entries.map(\.key) == ["b"])
    }
}
