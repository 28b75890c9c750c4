/// Limits of the stream hub. The defaults suit a few Mbps per stream and GOPs of up to about 10 s.
public struct HubConfiguration: Sendable, Equatable {
    /// A GOP larger than this is not cached (new viewers then wait for the next keyframe).
    /// 32 MiB holds a 10 s GOP at 25 Mbps.
    public var gopCacheMaxBytes = 32 << 20
    /// Bytes a viewer may have queued before it is moved forward. Queued frames are shared with the
    /// source and other viewers (no copy), so this bounds delay more than memory. It must exceed the
    /// cached GOP a new viewer receives at once.
    public var viewerMaxQueueBytes = 16 << 20
    /// How long a frame may wait for a viewer's connection before the viewer is moved forward.
    /// 5 s lets a new viewer take a 10 s GOP burst over a modest link while bounding delay.
    public var viewerMaxWait: Duration = .seconds(5)
    /// Kernel send buffer for a viewer's socket (SO_SNDBUF; Linux doubles it). Linux autotunes send buffers up
    /// to 4 MiB, which for a slow viewer is seconds of video hidden where frame skipping cannot see it.
    /// 128 KiB is about half a second at 2 Mbps and still fills a 20 Mbps path with 100 ms of round trip.
    public var viewerSendBuffer = 128 << 10
    /// How long viewers of a stream whose publisher left are kept waiting for it to come back.
    /// Encoders such as OBS reconnect within a few seconds.
    public var republishGrace: Duration = .seconds(10)

    public init() {}
}

extension Duration {
    var nanoseconds: UInt64 {
        let (s, atto) = components
        return UInt64(max(0, s)) * 1_000_000_000 + UInt64(max(0, atto) / 1_000_000_000)
    }
}
