import NIOCore

/// Hex keeps test vectors readable next to the bit layouts they encode. White space is ignored; anything
/// else that is not a hex digit is a mistake in the test and traps.
extension Array where Element == UInt8 {
    public init(hex: String) {
        let digits: [Character] = hex.filter { !$0.isWhitespace }.map { $0 }
        precondition(digits.count % 2 == 0, "odd number of hex digits")
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        for i in stride(from: 0, to: digits.count, by: 2) {
            bytes.append(UInt8(String(digits[i...i + 1]), radix: 16)!)
        }
        self = bytes
    }
}

extension ByteBuffer {
    public init(hex: String) {
        self.init(bytes: [UInt8](hex: hex))
    }
}
