/// CRC-32 (ISO-HDLC: polynomial 0xEDB88320 reflected, as in zlib), which FINGERPRINT uses (RFC 8489 14.7).
public enum CRC32 {
    static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    public static func checksum<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        continuing(0, bytes)
    }

    /// The checksum of the bytes of `previous` followed by `bytes`.
    public static func continuing<C: Collection>(_ previous: UInt32, _ bytes: C) -> UInt32 where C.Element == UInt8 {
        var c = previous ^ 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}
