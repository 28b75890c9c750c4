/// Why the hub refused a publisher or a viewer.
public enum HubError: Error, Equatable, Sendable {
    /// Another publisher holds the stream (RTMP answers `NetStream.Publish.BadName`).
    case alreadyPublishing(StreamKey)
    /// Nothing is published under that name (RTMP `NetStream.Play.StreamNotFound`, HTTP 404).
    case streamNotFound(StreamKey)
}
