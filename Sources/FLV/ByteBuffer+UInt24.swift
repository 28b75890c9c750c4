import NIOCore

/// FLV sizes and timestamps are 24-bit big-endian; NIOCore has no public UInt24 accessors.
extension ByteBuffer {
    func getFLVUInt24(at index: Int) -> UInt32? {
        guard let high = getInteger(at: index, as: UInt8.self),
              let low = getInteger(at: index + 1, as: UInt16.self)
        else { return nil }
        return UInt32(high) << 16 | UInt32(low)
    }

    mutating func readFLVUInt24() -> UInt32? {
        guard let value = getFLVUInt24(at: readerIndex) else { return nil }
        moveReaderIndex(forwardBy: 3)
        return value
    }

    mutating func writeFLVUInt24(_ value: UInt32) {
        writeInteger(UInt8(truncatingIfNeeded: value >> 16))
        writeInteger(UInt16(truncatingIfNeeded: value))
    }
}
