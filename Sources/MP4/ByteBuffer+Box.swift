import NIOCore

extension ByteBuffer {
    /// Writes a box, ISO/IEC 14496-12 4.2: a 32-bit size, the four-character type, then `body`.
    ///
    /// The size is written as a placeholder and patched once `body` has run, so no box size is
    /// ever computed by hand. A ByteBuffer cannot grow past 4 GiB, so the 32-bit form always
    /// suffices and the 64-bit `largesize` form is never needed.
    mutating func writeBox(_ type: String, _ body: (inout ByteBuffer) -> Void) {
        let start = writerIndex
        writeInteger(UInt32(0))
        writeFourCC(type)
        body(&self)
        setInteger(UInt32(truncatingIfNeeded: writerIndex &- start), at: start)
    }

    /// Writes a FullBox, ISO/IEC 14496-12 4.2: a box whose body starts with 8-bit version and 24-bit flags.
    mutating func writeFullBox(_ type: String, version: UInt8, flags: UInt32, _ body: (inout ByteBuffer) -> Void) {
        writeBox(type) { box in
            box.writeInteger(UInt32(version) << 24 | (flags & 0x00FF_FFFF))
            body(&box)
        }
    }

    /// Writes exactly four bytes of a (constant, ASCII) four-character code, padding with spaces
    /// so that a mistyped constant can never shift every later field.
    mutating func writeFourCC(_ code: String) {
        var bytes = Array(code.utf8.prefix(4))
        while bytes.count < 4 { bytes.append(0x20) }
        writeBytes(bytes)
    }

    /// The 3x3 transformation matrix of `mvhd` and `tkhd` set to identity, ISO/IEC 14496-12 8.2.2 / 8.3.2
    /// ({0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000}).
    mutating func writeUnityMatrix() {
        for value: UInt32 in [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
            writeInteger(value)
        }
    }
}
