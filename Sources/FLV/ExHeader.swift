import NIOCore

/// Shared walk over the Enhanced RTMP v2 extended header prefix used by both
/// ExAudioTagHeader and ExVideoTagHeader ("Enhanced Audio" / "Enhanced Video" sections).
enum ExHeader {
    /// PacketType value that announces a ModEx block (7 for both audio and video).
    static let modEx: UInt8 = 7

    /// Skips ModEx blocks: `[UI8 size-1 (UI16 size-1 when 255)] [data] [modExType:4 | packetType:4]`,
    /// repeated while the packet type is ModEx. Each round consumes at least two bytes of a
    /// finite body, so the loop always ends. Returns the final packet type.
    static func skipModEx(
        _ body: inout ByteBuffer, packetType initial: UInt8
    ) throws(FLVError) -> UInt8 {
        var packetType = initial
        while packetType == modEx {
            guard let sizeByte = body.readInteger(as: UInt8.self) else { throw .truncated("modExDataSize") }
            var size = Int(sizeByte) + 1
            if size == 256 {
                guard let wide = body.readInteger(as: UInt16.self) else { throw .truncated("modExDataSize") }
                size = Int(wide) + 1
            }
            guard body.readSlice(length: size) != nil else { throw .truncated("modExData") }
            guard let typeByte = body.readInteger(as: UInt8.self) else { throw .truncated("packetModExType") }
            packetType = typeByte & 0x0F
        }
        return packetType
    }

    static func readFourCC(_ body: inout ByteBuffer) throws(FLVError) -> UInt32 {
        guard let value = body.readInteger(as: UInt32.self) else { throw .truncated("FourCC") }
        return value
    }
}
