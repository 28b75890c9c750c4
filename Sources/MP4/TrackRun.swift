/// The samples of one track inside a fragment: becomes one `traf` (ISO/IEC 14496-12 8.8.6).
public struct TrackRun: Sendable {
    /// The `track_ID` of a track in the init segment.
    public var trackID: UInt32
    /// Decode time of the first sample in the track's timescale (`tfdt`, ISO/IEC 14496-12 8.8.12).
    public var baseMediaDecodeTime: UInt64
    /// The samples in decode order.
    public var samples: [Sample]

    /// Creates a run.
    public init(trackID: UInt32, baseMediaDecodeTime: UInt64, samples: [Sample]) {
        self.trackID = trackID
        self.baseMediaDecodeTime = baseMediaDecodeTime
        self.samples = samples
    }
}
