import Codecs

/// A track of a fragmented MP4 stream: what the init segment's `trak` and `trex` describe.
public struct Track: Sendable, Equatable {
    /// The codec of a track and its decoder configuration.
    public enum Media: Sendable, Equatable {
        /// H.264 video; the picture size comes from the record's first SPS.
        case h264(H264.AVCDecoderConfigurationRecord)
        /// AAC audio.
        case aac(AAC.AudioSpecificConfig)
    }

    /// `track_ID`, 1-based (0 is reserved, ISO/IEC 14496-12 8.3.2).
    public var id: UInt32
    /// Ticks per second of every time in the track, e.g. 90000 for video, the sample rate for audio.
    public var timescale: UInt32
    /// The codec and its configuration.
    public var media: Media

    /// Creates a track.
    public init(id: UInt32, timescale: UInt32, media: Media) {
        self.id = id
        self.timescale = timescale
        self.media = media
    }

    /// RFC 6381 codec string for MSE `addSourceBuffer` and the HLS `CODECS` attribute.
    public var codecString: String {
        switch media {
        case .h264(let config): return config.codecString
        case .aac(let config): return config.codecString
        }
    }
}
