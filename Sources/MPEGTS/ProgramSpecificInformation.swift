import NIOCore

/// PAT and PMT sections for a single program, ISO/IEC 13818-1 2.4.4.3 (PAT) and 2.4.4.8 (PMT),
/// with the CRC_32 of Annex A.
struct ProgramSpecificInformation: Sendable {
    struct ElementaryStream: Sendable {
        var streamType: UInt8
        var pid: UInt16
    }

    var programNumber: UInt16
    var pmtPID: UInt16
    var pcrPID: UInt16
    var streams: [ElementaryStream]

    /// PAT payload: pointer_field followed by the section.
    func patPayload() -> ByteBuffer {
        var section = ByteBuffer()
        section.writeInteger(UInt8(0x00))  // table_id: program_association_section
        section.writeInteger(UInt16(0xB000 | (5 + 4 + 4)))  // syntax indicator, reserved, section_length
        section.writeInteger(UInt16(1))  // transport_stream_id
        Self.writeVersionAndSectionNumbers(to: &section)
        section.writeInteger(programNumber)
        section.writeInteger(UInt16(0xE000) | pmtPID)
        return Self.finish(section)
    }

    /// PMT payload: pointer_field followed by the section.
    func pmtPayload() -> ByteBuffer {
        var section = ByteBuffer()
        section.writeInteger(UInt8(0x02))  // table_id: TS_program_map_section
        section.writeInteger(UInt16(0xB000 | (9 + 5 * streams.count + 4)))
        section.writeInteger(programNumber)
        Self.writeVersionAndSectionNumbers(to: &section)
        section.writeInteger(UInt16(0xE000) | pcrPID)
        section.writeInteger(UInt16(0xF000))  // program_info_length 0
        for stream in streams {
            section.writeInteger(stream.streamType)
            section.writeInteger(UInt16(0xE000) | stream.pid)
            section.writeInteger(UInt16(0xF000))  // ES_info_length 0
        }
        return Self.finish(section)
    }

    /// version_number 0 with current_next_indicator 1: the tables never change within a muxer.
    private static func writeVersionAndSectionNumbers(to section: inout ByteBuffer) {
        section.writeBytes([0xC1, 0x00, 0x00])
    }

    private static func finish(_ section: ByteBuffer) -> ByteBuffer {
        var out = ByteBuffer()
        out.writeInteger(UInt8(0))  // pointer_field: the section starts right away
        out.writeImmutableBuffer(section)
        out.writeInteger(crc32(section.readableBytesView))
        return out
    }

    /// CRC-32/MPEG-2 (poly 0x04C11DB7, init all ones, no reflection, no final xor), Annex A.
    /// Bitwise because sections are a few dozen bytes and a table would be a global.
    static func crc32<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte) << 24
            for _ in 0..<8 {
                crc = (crc & 0x8000_0000) != 0 ? (crc << 1) ^ 0x04C1_1DB7 : crc << 1
            }
        }
        return crc
    }
}
