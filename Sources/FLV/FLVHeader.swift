import NIOCore

/// The 9-byte FLV file header (Adobe FLV spec v10.1, E.2).
public struct FLVHeader: Sendable, Equatable {
    /// TypeFlagsAudio.
    public var hasAudio: Bool
    /// TypeFlagsVideo.
    public var hasVideo: Bool

    /// Size of the header as written by `write(to:)`, without PreviousTagSize0.
    public static let size = 9

    /// DataOffset larger than this is refused: only version 1 exists (offset 9), and an
    /// unbounded offset would make a streaming caller wait for gigabytes before the first tag.
    static let maxDataOffset: UInt32 = 1 << 16

    /// Creates a header.
    public init(hasAudio: Bool, hasVideo: Bool) {
        self.hasAudio = hasAudio
        self.hasVideo = hasVideo
    }

    /// Parses the FLV header, Adobe FLV spec v10.1 E.2, and consumes it, any bytes up to
    /// DataOffset, and PreviousTagSize0 (E.3), leaving the reader at the first tag.
    ///
    /// Throws `.truncated` without consuming anything when the buffer does not yet hold all of
    /// that, so a streaming caller can retry after more bytes arrive.
    public init(parsing buffer: inout ByteBuffer) throws(FLVError) {
        var input = buffer
        guard let signature = input.readBytes(length: 3) else { throw .truncated("Signature") }
        guard signature == [0x46, 0x4C, 0x56] else { throw .invalid("signature is not 'FLV'") }
        guard let version = input.readInteger(as: UInt8.self) else { throw .truncated("Version") }
        guard version == 1 else { throw .invalid("version \(version)") }
        guard let flags = input.readInteger(as: UInt8.self) else { throw .truncated("TypeFlags") }
        guard let dataOffset = input.readInteger(as: UInt32.self) else { throw .truncated("DataOffset") }
        guard dataOffset >= UInt32(Self.size) else { throw .invalid("DataOffset \(dataOffset) < 9") }
        guard dataOffset <= Self.maxDataOffset else { throw .invalid("DataOffset \(dataOffset) too large") }
        guard input.readSlice(length: Int(dataOffset) - Self.size) != nil else { throw .truncated("header padding") }
        guard input.readInteger(as: UInt32.self) != nil else { throw .truncated("PreviousTagSize0") }
        self.init(hasAudio: flags & 0x04 != 0, hasVideo: flags & 0x01 != 0)
        buffer = input
    }

    /// Writes the 9 header bytes followed by PreviousTagSize0 (4 zero bytes).
    public func write(to buffer: inout ByteBuffer) {
        buffer.writeBytes([0x46, 0x4C, 0x56, 0x01])
        buffer.writeInteger(UInt8((hasAudio ? 0x04 : 0) | (hasVideo ? 0x01 : 0)))
        buffer.writeInteger(UInt32(Self.size))
        buffer.writeInteger(UInt32(0))
    }
}
