/// MSB-first bit reader used by the SPS and AudioSpecificConfig parsers.
///
/// Every read is bounds-checked and throws `CodecError.truncated(field)` so callers can
/// name the syntax element that ran off the end instead of trapping.
struct BitReader {
    private let bytes: [UInt8]
    /// Position in bits from the start of `bytes`.
    private(set) var position: Int = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    var bitsLeft: Int { bytes.count &* 8 &- position }

    mutating func bit(_ field: String) throws(CodecError) -> Bool {
        guard position < bytes.count &* 8 else { throw .truncated(field) }
        let byte = bytes[position >> 3]
        let value = (byte >> UInt8(7 &- (position & 7))) & 1
        position &+= 1
        return value == 1
    }

    /// Reads `count` (0...32) bits as an unsigned big-endian value.
    mutating func bits(_ count: Int, _ field: String) throws(CodecError) -> UInt32 {
        precondition(count >= 0 && count <= 32, "BitReader.bits supports 0...32 bits")
        guard bitsLeft >= count else { throw .truncated(field) }
        var value: UInt32 = 0
        for _ in 0..<count {
            let byte = bytes[position >> 3]
            let bit = (byte >> UInt8(7 &- (position & 7))) & 1
            value = (value << 1) | UInt32(bit)
            position &+= 1
        }
        return value
    }

    mutating func skip(_ count: Int, _ field: String) throws(CodecError) {
        guard count >= 0, bitsLeft >= count else { throw .truncated(field) }
        position &+= count
    }

    /// Unsigned exp-Golomb, ITU-T H.264 9.1. Codes longer than 32 bits cannot come from a
    /// conforming encoder (the largest legal value is 2^32 - 2), so they are rejected rather
    /// than scanned: a run of zero bytes must not turn into a long loop or an overflow.
    mutating func ue(_ field: String) throws(CodecError) -> UInt32 {
        var leadingZeros = 0
        while try !bit(field) {
            leadingZeros &+= 1
            if leadingZeros > 31 { throw .invalid("\(field): exp-Golomb code longer than 32 bits") }
        }
        if leadingZeros == 0 { return 0 }
        let suffix = try bits(leadingZeros, field)
        // At most (2^31 - 1) + (2^31 - 1): fits in UInt32.
        return ((UInt32(1) << UInt32(leadingZeros)) &- 1) &+ suffix
    }

    /// Signed exp-Golomb, ITU-T H.264 9.1.1.
    mutating func se(_ field: String) throws(CodecError) -> Int32 {
        let codeNum = UInt64(try ue(field))
        let magnitude = Int32((codeNum &+ 1) / 2)   // <= 2^31 - 1
        return codeNum & 1 == 1 ? magnitude : -magnitude
    }
}
