/// Helpers for the FOURCC codec ids of Enhanced RTMP (veovera enhanced-rtmp v1/v2, "FourCC").
enum FourCC {
    /// Packs four ASCII bytes big-endian, the order they appear on the wire.
    static func value(_ text: StaticString) -> UInt32 {
        precondition(text.utf8CodeUnitCount == 4, "a FourCC has exactly four bytes")
        return text.withUTF8Buffer { bytes in
            bytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        }
    }

    /// The four characters, or a hex form when any byte is not printable ASCII.
    static func text(_ value: UInt32) -> String {
        let bytes = (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * UInt32($0))) }
        if bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) {
            return String(decoding: bytes, as: UTF8.self)
        }
        return "0x" + bytes.map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }
}
