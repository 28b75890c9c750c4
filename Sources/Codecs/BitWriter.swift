/// MSB-first bit writer, the inverse of `BitReader`, used to serialise bit-packed configs.
struct BitWriter {
    private(set) var bytes: [UInt8] = []
    private var bitCount = 0

    /// Appends the low `count` (0...32) bits of `value`, most significant first.
    mutating func write(_ value: UInt32, bits count: Int) {
        precondition(count >= 0 && count <= 32, "BitWriter.write supports 0...32 bits")
        var remaining = count
        while remaining > 0 {
            remaining -= 1
            let bit = UInt8(truncatingIfNeeded: (value >> UInt32(remaining)) & 1)
            if bitCount & 7 == 0 { bytes.append(0) }
            bytes[bytes.count - 1] |= bit << UInt8(7 - (bitCount & 7))
            bitCount += 1
        }
    }

    mutating func write(_ flag: Bool) {
        write(flag ? 1 : 0, bits: 1)
    }
}
