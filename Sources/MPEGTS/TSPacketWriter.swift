import NIOCore

/// Splits one payload unit (a PES packet or a PSI section) into 188-byte transport packets on a
/// single PID, ISO/IEC 13818-1 2.4.3.2 (transport packet) and 2.4.3.4 (adaptation field).
struct TSPacketWriter: Sendable {
    static let packetSize = 188
    static let syncByte: UInt8 = 0x47
    static let headerSize = 4
    static let maxPayload = packetSize - headerSize

    /// PID carried in every packet (13 bits).
    let pid: UInt16
    /// `continuity_counter` of the next packet; 4 bits, so it wraps mod 16.
    private(set) var continuityCounter: UInt8 = 0

    init(pid: UInt16) {
        self.pid = pid & 0x1FFF
    }

    /// Writes `payload` as consecutive packets, the first with `payload_unit_start_indicator` set.
    ///
    /// The last packet is completed with adaptation-field stuffing rather than trailing bytes,
    /// because bytes after a PES packet would be read as part of its elementary stream. PSI
    /// callers pass `fillWithFF` since 0xFF after a section is the stuffing 2.4.4 defines.
    mutating func write(
        payload: ByteBuffer,
        randomAccess: Bool = false,
        pcr: Int64? = nil,
        fillWithFF: Bool = false,
        to out: inout ByteBuffer
    ) {
        var remaining = payload
        var first = true
        out.reserveCapacity(minimumWritableBytes: (remaining.readableBytes / Self.maxPayload + 1) * Self.packetSize)
        repeat {
            let flagsWanted = first && (randomAccess || pcr != nil)
            // Adaptation field body after its length byte: the flags byte plus an optional PCR.
            let requiredBody = flagsWanted ? 1 + (pcr != nil ? 6 : 0) : 0
            let requiredField = flagsWanted ? 1 + requiredBody : 0
            let payloadCount = min(remaining.readableBytes, Self.maxPayload - requiredField)
            let spare = Self.maxPayload - requiredField - payloadCount
            let fieldSize = fillWithFF || spare == 0 ? requiredField : requiredField + spare
            let padding = fillWithFF ? spare : 0

            let adaptationControl: UInt8 = fieldSize > 0 ? 0b11 : 0b01
            out.writeInteger(Self.syncByte)
            out.writeInteger(UInt16(first ? 0x4000 : 0) | pid)
            out.writeInteger((adaptationControl << 4) | continuityCounter)
            continuityCounter = (continuityCounter + 1) & 0x0F

            if fieldSize > 0 {
                // A one-byte field is just adaptation_field_length = 0: the only way to stuff a single byte.
                out.writeInteger(UInt8(fieldSize - 1))
                if fieldSize > 1 {
                    var flags: UInt8 = 0
                    if first && randomAccess { flags |= 0x40 }
                    if first && pcr != nil { flags |= 0x10 }
                    out.writeInteger(flags)
                    var written = 2
                    if first, let pcr {
                        Self.writePCR(pcr, to: &out)
                        written += 6
                    }
                    out.writeRepeatingByte(0xFF, count: fieldSize - written)
                }
            }
            if var chunk = remaining.readSlice(length: payloadCount) {
                out.writeBuffer(&chunk)
            }
            if padding > 0 { out.writeRepeatingByte(0xFF, count: padding) }
            first = false
        } while remaining.readableBytes > 0
    }

    /// program_clock_reference_base (33 bits), 6 reserved bits, extension 0: 27 MHz precision is
    /// not needed because every timestamp here is already quantised to 90 kHz.
    static func writePCR(_ pcr: Int64, to out: inout ByteBuffer) {
        let base = UInt64(pcr & PESHeader.timestampMask)
        out.writeInteger(UInt32(truncatingIfNeeded: base >> 1))
        out.writeInteger(UInt8(truncatingIfNeeded: (base & 1) << 7) | 0x7E)
        out.writeInteger(UInt8(0))
    }
}
