import NIOCore

extension H264 {
    /// The `avcC` payload carried by FLV/RTMP AVC sequence headers and MP4 sample entries.
    public struct AVCDecoderConfigurationRecord: Sendable, Equatable {
        /// `AVCProfileIndication`, a copy of the SPS `profile_idc`.
        public var profileIndication: UInt8
        /// `profile_compatibility`, a copy of the SPS constraint flag byte.
        public var profileCompatibility: UInt8
        /// `AVCLevelIndication`, a copy of the SPS `level_idc`.
        public var levelIndication: UInt8
        /// Size in bytes of the length prefix before each NAL unit in samples: 1, 2 or 4.
        public var nalLengthSize: Int
        /// SPS NAL units, each including its one-byte NAL header.
        public var sequenceParameterSets: [[UInt8]]
        /// PPS NAL units, each including its one-byte NAL header.
        public var pictureParameterSets: [[UInt8]]

        /// Creates a record from its parts; `write(to:)` clamps what the format cannot express.
        public init(
            profileIndication: UInt8,
            profileCompatibility: UInt8,
            levelIndication: UInt8,
            nalLengthSize: Int,
            sequenceParameterSets: [[UInt8]],
            pictureParameterSets: [[UInt8]]
        ) {
            self.profileIndication = profileIndication
            self.profileCompatibility = profileCompatibility
            self.levelIndication = levelIndication
            self.nalLengthSize = nalLengthSize
            self.sequenceParameterSets = sequenceParameterSets
            self.pictureParameterSets = pictureParameterSets
        }

        /// Parses an AVCDecoderConfigurationRecord, ISO/IEC 14496-15 5.3.3.1.
        ///
        /// Requires at least one non-empty SPS and PPS: a record without them cannot start a
        /// decoder, and accepting it would only move the failure downstream. Bytes after the
        /// PPS list (the High-profile chroma_format / bit depth / SPS-ext block, or encoder
        /// padding) are ignored, because the same facts are in the SPS itself and several
        /// encoders omit or garble that block.
        public init(parsing buffer: ByteBuffer) throws(CodecError) {
            var input = buffer
            guard let version = input.readInteger(as: UInt8.self) else { throw .truncated("configurationVersion") }
            guard version == 1 else { throw .invalid("configurationVersion \(version)") }
            guard let profile = input.readInteger(as: UInt8.self) else { throw .truncated("AVCProfileIndication") }
            guard let compatibility = input.readInteger(as: UInt8.self) else { throw .truncated("profile_compatibility") }
            guard let level = input.readInteger(as: UInt8.self) else { throw .truncated("AVCLevelIndication") }
            guard let lengthByte = input.readInteger(as: UInt8.self) else { throw .truncated("lengthSizeMinusOne") }
            let lengthSize = Int(lengthByte & 0x03) + 1
            guard lengthSize != 3 else { throw .invalid("lengthSizeMinusOne 2 (3-byte NAL lengths)") }

            guard let spsCountByte = input.readInteger(as: UInt8.self) else { throw .truncated("numOfSequenceParameterSets") }
            let spsCount = Int(spsCountByte & 0x1F)
            guard spsCount > 0 else { throw .invalid("numOfSequenceParameterSets 0") }
            let sps = try Self.readParameterSets(&input, count: spsCount, name: "sequenceParameterSet")

            guard let ppsCount = input.readInteger(as: UInt8.self) else { throw .truncated("numOfPictureParameterSets") }
            guard ppsCount > 0 else { throw .invalid("numOfPictureParameterSets 0") }
            let pps = try Self.readParameterSets(&input, count: Int(ppsCount), name: "pictureParameterSet")

            self.init(
                profileIndication: profile,
                profileCompatibility: compatibility,
                levelIndication: level,
                nalLengthSize: lengthSize,
                sequenceParameterSets: sps,
                pictureParameterSets: pps
            )
        }

        /// `count` comes from the wire, so nothing is reserved up front: each set is only
        /// appended after its bytes were actually present.
        private static func readParameterSets(
            _ input: inout ByteBuffer, count: Int, name: String
        ) throws(CodecError) -> [[UInt8]] {
            var sets: [[UInt8]] = []
            for _ in 0..<count {
                guard let length = input.readInteger(as: UInt16.self) else { throw .truncated("\(name)Length") }
                guard length > 0 else { throw .invalid("empty \(name)") }
                guard let bytes = input.readBytes(length: Int(length)) else { throw .truncated(name) }
                sets.append(bytes)
            }
            return sets
        }

        /// Serialises the record. Like libavformat, profiles other than 66/77/88 get the
        /// trailing chroma_format / bit depth block (derived from the first SPS) so High-profile
        /// records round-trip byte for byte. Counts and lengths the format cannot hold are
        /// clamped (at most 31 SPS, 255 PPS, 65535 bytes each).
        public func write(to buffer: inout ByteBuffer) {
            buffer.writeInteger(UInt8(1))
            buffer.writeInteger(profileIndication)
            buffer.writeInteger(profileCompatibility)
            buffer.writeInteger(levelIndication)
            let lengthSizeMinusOne = UInt8(truncatingIfNeeded: (nalLengthSize &- 1) & 0x03)
            buffer.writeInteger(0xFC | lengthSizeMinusOne)
            let spsList = sequenceParameterSets.prefix(31)
            buffer.writeInteger(0xE0 | UInt8(spsList.count))
            for sps in spsList { Self.writeParameterSet(sps, to: &buffer) }
            let ppsList = pictureParameterSets.prefix(255)
            buffer.writeInteger(UInt8(ppsList.count))
            for pps in ppsList { Self.writeParameterSet(pps, to: &buffer) }

            if ![66, 77, 88].contains(profileIndication),
               let first = sequenceParameterSets.first,
               let sps = try? SequenceParameterSet(parsing: first) {
                buffer.writeInteger(0xFC | UInt8(truncatingIfNeeded: sps.chromaFormatIdc & 0x03))
                buffer.writeInteger(0xF8 | UInt8(truncatingIfNeeded: (sps.bitDepthLuma &- 8) & 0x07))
                buffer.writeInteger(0xF8 | UInt8(truncatingIfNeeded: (sps.bitDepthChroma &- 8) & 0x07))
                buffer.writeInteger(UInt8(0))   // numOfSequenceParameterSetExt
            }
        }

        private static func writeParameterSet(_ set: [UInt8], to buffer: inout ByteBuffer) {
            let bytes = set.prefix(Int(UInt16.max))
            buffer.writeInteger(UInt16(bytes.count))
            buffer.writeBytes(bytes)
        }

        /// RFC 6381 codec string, e.g. `avc1.64001f`.
        public var codecString: String {
            "avc1." + hexByte(profileIndication) + hexByte(profileCompatibility) + hexByte(levelIndication)
        }
    }
}
