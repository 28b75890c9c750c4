import Codecs
import NIOCore

/// The `esds` box of an `mp4a` sample entry, ISO/IEC 14496-14 5.6.1, holding an ES_Descriptor
/// (ISO/IEC 14496-1 7.2.6.5) whose DecoderSpecificInfo is the AudioSpecificConfig.
///
/// ```
/// esds (FullBox v0)
///   ES_Descriptor            tag 3: ES_ID 0, flags 0
///     DecoderConfigDescriptor  tag 4: objectTypeIndication 0x40 (MPEG-4 Audio), streamType 5 (audio)
///       DecoderSpecificInfo      tag 5: AudioSpecificConfig bytes
///     SLConfigDescriptor       tag 6: predefined 2 (reserved for MP4 files)
/// ```
struct ElementaryStreamDescriptor: Sendable {
    static let esDescriptorTag: UInt8 = 3
    static let decoderConfigTag: UInt8 = 4
    static let decoderSpecificInfoTag: UInt8 = 5
    static let slConfigTag: UInt8 = 6
    /// objectTypeIndication for ISO/IEC 14496-3 audio (the RFC 6381 "40" in `mp4a.40.2`).
    static let mpeg4AudioObjectType: UInt8 = 0x40
    /// streamType 5 (AudioStream) << 2, upStream 0, reserved bit 1.
    static let audioStreamTypeByte: UInt8 = 0x05 << 2 | 0x01

    var config: AAC.AudioSpecificConfig

    func write(to buffer: inout ByteBuffer) {
        var specificInfo = ByteBuffer()
        config.write(to: &specificInfo)

        buffer.writeFullBox("esds", version: 0, flags: 0) { box in
            Self.writeDescriptor(tag: Self.esDescriptorTag, to: &box) { es in
                // ES_ID 0: ISO/IEC 14496-14 3.1.2 says it is set to 0 when stored in a file.
                es.writeInteger(UInt16(0))
                es.writeInteger(UInt8(0))   // no stream dependence, URL or OCR stream; priority 0
                Self.writeDescriptor(tag: Self.decoderConfigTag, to: &es) { dc in
                    dc.writeInteger(Self.mpeg4AudioObjectType)
                    dc.writeInteger(Self.audioStreamTypeByte)
                    // bufferSizeDB (24 bits), maxBitrate, avgBitrate: unknown for a live stream when the
                    // init segment is written; 0 is allowed and decoders do not use them.
                    dc.writeRepeatingByte(0, count: 3 + 4 + 4)
                    Self.writeDescriptor(tag: Self.decoderSpecificInfoTag, to: &dc) { $0.writeImmutableBuffer(specificInfo) }
                }
                Self.writeDescriptor(tag: Self.slConfigTag, to: &es) { $0.writeInteger(UInt8(2)) }
            }
        }
    }

    /// A descriptor with its expandable size (ISO/IEC 14496-1 8.3.3): 7 bits per byte, high bit
    /// set on all but the last. The body is built first because the size comes before it.
    static func writeDescriptor(tag: UInt8, to buffer: inout ByteBuffer, _ body: (inout ByteBuffer) -> Void) {
        var content = ByteBuffer()
        body(&content)
        // At most four size bytes (2^28 - 1); an AudioSpecificConfig is a handful of bytes, so this
        // clamp only keeps the encoding well formed.
        let size = min(content.readableBytes, (1 << 28) - 1)
        buffer.writeInteger(tag)
        var shift = 21
        while shift > 0 && size >> shift == 0 { shift -= 7 }
        while shift > 0 {
            buffer.writeInteger(UInt8(truncatingIfNeeded: size >> shift) & 0x7F | 0x80)
            shift -= 7
        }
        buffer.writeInteger(UInt8(truncatingIfNeeded: size) & 0x7F)
        buffer.writeImmutableBuffer(content.getSlice(at: content.readerIndex, length: size) ?? content)
    }
}
