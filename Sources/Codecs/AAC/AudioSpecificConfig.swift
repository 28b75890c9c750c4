import NIOCore

extension AAC {
    /// MPEG-4 AudioSpecificConfig: the AAC sequence header of FLV/RTMP and the `esds` payload of MP4.
    ///
    /// `objectType` is always the core coder (2 for HE-AAC streams). When SBR/PS is signalled
    /// explicitly, `extensionObjectType` holds 5 (SBR) or 29 (SBR + PS) and
    /// `extensionSamplingFrequency` the output rate after SBR.
    public struct AudioSpecificConfig: Sendable, Equatable {
        /// Core `audioObjectType` (2 = AAC LC); values above 31 come from the escape form.
        public var objectType: UInt8
        /// Core sampling rate in Hz.
        public var samplingFrequency: Int
        /// `samplingFrequencyIndex`, 15 when the rate is carried explicitly.
        public var samplingFrequencyIndex: UInt8
        /// `channelConfiguration` (0 means a program_config_element defines the layout).
        public var channelConfiguration: UInt8
        /// 5 (SBR) or 29 (PS) when explicitly signalled, else nil.
        public var extensionObjectType: UInt8?
        /// SBR output sampling rate in Hz when explicitly signalled, else nil.
        public var extensionSamplingFrequency: Int?
        /// GASpecificConfig `frameLengthFlag`: true for 960-sample frames instead of 1024.
        public var frameLengthFlag: Bool

        /// Object types whose config is GASpecificConfig without error-resilience fields
        /// (ISO/IEC 14496-3 1.6.2.1): the only ones whose tail is decoded here.
        static let gaObjectTypes: Set<UInt8> = [1, 2, 3, 4, 6, 7]

        /// Creates a config; `samplingFrequencyIndex` is derived (15 for rates outside Table 1.18).
        public init(
            objectType: UInt8,
            samplingFrequency: Int,
            channelConfiguration: UInt8,
            extensionObjectType: UInt8? = nil,
            extensionSamplingFrequency: Int? = nil,
            frameLengthFlag: Bool = false
        ) {
            self.objectType = objectType
            self.samplingFrequency = samplingFrequency
            self.samplingFrequencyIndex = AAC.samplingFrequencyIndex(for: samplingFrequency)
            self.channelConfiguration = channelConfiguration
            self.extensionObjectType = extensionObjectType
            self.extensionSamplingFrequency = extensionSamplingFrequency
            self.frameLengthFlag = frameLengthFlag
        }

        /// Parses AudioSpecificConfig(), ISO/IEC 14496-3 1.6.2.1, including explicit hierarchical
        /// SBR/PS signalling (object type 5 or 29 first) and the backward-compatible sync
        /// extension (0x2B7 after GASpecificConfig, 1.6.5.2).
        ///
        /// The GASpecificConfig tail is only decoded for object types 1, 2, 3, 4, 6 and 7 with a
        /// non-zero channelConfiguration; for anything else the fields after channelConfiguration
        /// are left unread, since a program_config_element or ER config would be needed to find
        /// what follows and nothing here depends on it.
        public init(parsing buffer: ByteBuffer) throws(CodecError) {
            var r = BitReader(Array(buffer.readableBytesView))
            var objectType = try Self.readObjectType(&r)
            let (frequencyIndex, frequency) = try Self.readSamplingFrequency(&r, field: "samplingFrequencyIndex")
            let channels = UInt8(try r.bits(4, "channelConfiguration"))

            var extensionType: UInt8?
            var extensionFrequency: Int?
            if objectType == 5 || objectType == 29 {
                extensionType = objectType
                extensionFrequency = try Self.readSamplingFrequency(&r, field: "extensionSamplingFrequencyIndex").1
                objectType = try Self.readObjectType(&r)
                if objectType == 5 || objectType == 29 {
                    throw .invalid("audioObjectType \(objectType) nested inside SBR/PS signalling")
                }
            }

            var frameLength = false
            if Self.gaObjectTypes.contains(objectType) && channels != 0 {
                frameLength = try r.bit("frameLengthFlag")
                if try r.bit("dependsOnCoreCoder") {
                    try r.skip(14, "coreCoderDelay")
                }
                let extensionFlag = try r.bit("extensionFlag")
                if objectType == 6 || objectType == 20 {
                    try r.skip(3, "layerNr")
                }
                if extensionFlag {
                    _ = try r.bit("extensionFlag3")
                }
                // Backward-compatible signalling: only meaningful when nothing was signalled up front.
                if extensionType == nil && r.bitsLeft >= 16 {
                    let (type, rate) = try Self.readSyncExtension(&r)
                    extensionType = type
                    extensionFrequency = rate
                }
            }

            self.objectType = objectType
            self.samplingFrequency = frequency
            self.samplingFrequencyIndex = frequencyIndex
            self.channelConfiguration = channels
            self.extensionObjectType = extensionType
            self.extensionSamplingFrequency = extensionFrequency
            self.frameLengthFlag = frameLength
        }

        /// GetAudioObjectType(), 1.6.2.1: 31 escapes to 32 + a 6-bit value.
        private static func readObjectType(_ r: inout BitReader) throws(CodecError) -> UInt8 {
            let type = try r.bits(5, "audioObjectType")
            if type == 31 {
                return UInt8(32 + (try r.bits(6, "audioObjectTypeExt")))
            }
            guard type != 0 else { throw .invalid("audioObjectType 0 (null object)") }
            return UInt8(type)
        }

        private static func readSamplingFrequency(
            _ r: inout BitReader, field: String
        ) throws(CodecError) -> (UInt8, Int) {
            let index = UInt8(try r.bits(4, field))
            if index == 15 {
                let explicit = Int(try r.bits(24, field == "samplingFrequencyIndex" ? "samplingFrequency" : "extensionSamplingFrequency"))
                guard explicit > 0 else { throw .invalid("\(field): explicit sampling frequency 0") }
                return (15, explicit)
            }
            guard Int(index) < AAC.samplingFrequencies.count else { throw .invalid("\(field) \(index) is reserved") }
            return (index, AAC.samplingFrequencies[Int(index)])
        }

        /// The 0x2B7 sync extension. ffmpeg's native encoder always appends it with
        /// sbrPresentFlag = 0, which must read as "plain LC", not as HE-AAC.
        private static func readSyncExtension(_ r: inout BitReader) throws(CodecError) -> (UInt8?, Int?) {
            guard try r.bits(11, "syncExtensionType") == 0x2B7 else { return (nil, nil) }
            let type = try readObjectType(&r)
            guard type == 5 else { return (nil, nil) }
            guard try r.bit("sbrPresentFlag") else { return (nil, nil) }
            let rate = try readSamplingFrequency(&r, field: "extensionSamplingFrequencyIndex").1
            if r.bitsLeft >= 12, try r.bits(11, "syncExtensionType") == 0x548, try r.bit("psPresentFlag") {
                return (29, rate)
            }
            return (5, rate)
        }

        /// Serialises the config. Extension object types are written in the explicit hierarchical
        /// form (5/29 first), which every decoder understands; the GASpecificConfig tail is written
        /// for object types 1, 2, 3, 4, 6, 7 (no core coder, no extension flag). A
        /// program_config_element (channelConfiguration 0) is not modelled and not written.
        public func write(to buffer: inout ByteBuffer) {
            var w = BitWriter()
            if let extensionObjectType {
                Self.writeObjectType(extensionObjectType, to: &w)
                Self.writeSamplingFrequency(samplingFrequency, index: samplingFrequencyIndex, to: &w)
                w.write(UInt32(channelConfiguration & 0x0F), bits: 4)
                let extensionRate = extensionSamplingFrequency ?? samplingFrequency
                Self.writeSamplingFrequency(extensionRate, index: AAC.samplingFrequencyIndex(for: extensionRate), to: &w)
                Self.writeObjectType(objectType, to: &w)
            } else {
                Self.writeObjectType(objectType, to: &w)
                Self.writeSamplingFrequency(samplingFrequency, index: samplingFrequencyIndex, to: &w)
                w.write(UInt32(channelConfiguration & 0x0F), bits: 4)
            }
            if Self.gaObjectTypes.contains(objectType) {
                w.write(frameLengthFlag)
                w.write(false)   // dependsOnCoreCoder
                w.write(false)   // extensionFlag
                if objectType == 6 { w.write(0, bits: 3) }   // layerNr
            }
            buffer.writeBytes(w.bytes)
        }

        private static func writeObjectType(_ type: UInt8, to w: inout BitWriter) {
            if type >= 31 {
                w.write(31, bits: 5)
                w.write(UInt32(type &- 32) & 0x3F, bits: 6)
            } else {
                w.write(UInt32(type), bits: 5)
            }
        }

        private static func writeSamplingFrequency(_ frequency: Int, index: UInt8, to w: inout BitWriter) {
            // A stale index (caller changed the rate) must not win over the rate itself.
            let tableIndex = Int(index)
            if tableIndex < AAC.samplingFrequencies.count, AAC.samplingFrequencies[tableIndex] == frequency {
                w.write(UInt32(index), bits: 4)
            } else {
                w.write(15, bits: 4)
                w.write(UInt32(truncatingIfNeeded: frequency) & 0xFF_FFFF, bits: 24)
            }
        }

        /// RFC 6381 codec string: `mp4a.40.<object type>`, using the explicitly signalled
        /// extension type when present (`mp4a.40.5` / `mp4a.40.29`), as HLS and browsers expect.
        public var codecString: String {
            "mp4a.40.\(extensionObjectType ?? objectType)"
        }
    }
}
