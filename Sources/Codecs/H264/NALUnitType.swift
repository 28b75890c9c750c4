extension H264 {
    /// `nal_unit_type`, ITU-T H.264 Table 7-1.
    public enum NALUnitType: UInt8, Sendable {
        case nonIDR = 1
        case partitionA = 2
        case partitionB = 3
        case partitionC = 4
        case idr = 5
        case sei = 6
        case sps = 7
        case pps = 8
        case aud = 9
        case endOfSequence = 10
        case endOfStream = 11
        case filler = 12
        case spsExtension = 13
        case prefix = 14
        case subsetSPS = 15
        case dps = 16
        case auxiliarySlice = 19
        case sliceExtension = 20
        case sliceExtensionDepth = 21

        /// Classifies a NAL unit by its first byte (`nal_unit_type` is the low five bits).
        public init?(header: UInt8) {
            self.init(rawValue: header & 0x1F)
        }
    }
}
