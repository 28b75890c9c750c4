/// Namespace for MPEG-4 Audio / AAC types (ISO/IEC 14496-3).
public enum AAC {}

extension AAC {
    /// `samplingFrequencyIndex` values 0...12, ISO/IEC 14496-3 Table 1.18; 13 and 14 are reserved
    /// and 15 means the rate follows as an explicit 24-bit value.
    static let samplingFrequencies: [Int] = [
        96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
    ]

    /// Index for a rate, or 15 (explicit) when the table has no exact match.
    static func samplingFrequencyIndex(for frequency: Int) -> UInt8 {
        samplingFrequencies.firstIndex(of: frequency).map { UInt8($0) } ?? 15
    }
}
