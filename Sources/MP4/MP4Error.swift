import Codecs

/// Why a track list cannot be described by an init segment (ISO/IEC 14496-12 `moov`).
public enum MP4Error: Error, Equatable, Sendable {
    /// The track list is empty: an init segment without tracks cannot start any decoder.
    case noTracks
    /// A track_ID is 0 (reserved, ISO/IEC 14496-12 8.3.2) or used by more than one track.
    case invalidTrackID(UInt32)
    /// A timescale of 0 would make every duration of the track infinite.
    case zeroTimescale(trackID: UInt32)
    /// An H.264 configuration without SPS or PPS: an `avc1` sample entry must carry them.
    case missingParameterSets(trackID: UInt32)
    /// The first SPS of an H.264 configuration does not parse, so the picture size is unknown.
    case invalidSequenceParameterSet(trackID: UInt32, CodecError)
    /// `nalLengthSize` is not 1, 2 or 4, the only sizes `avcC` can signal (ISO/IEC 14496-15 5.3.3.1).
    case invalidNALLengthSize(trackID: UInt32, Int)
    /// An AAC sampling frequency outside 1...0xFFFFFF cannot be written into the AudioSpecificConfig.
    case invalidSamplingFrequency(trackID: UInt32, Int)
}
