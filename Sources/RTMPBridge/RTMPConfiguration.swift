/// Settings of the RTMP listener. Defaults follow SRS where it has one.
public struct RTMPConfiguration: Sendable, Equatable {
    public var host = "0.0.0.0"
    public var port = 1935
    /// Largest single RTMP message accepted. 8 MiB holds a keyframe of a 100 Mbps 4K stream; the protocol
    /// allows 16 MiB, which a hostile client would use to make us buffer.
    public var maxMessageSize = 8 << 20
    /// Bytes all partial messages of one connection may hold together.
    public var maxBufferedBytes = 16 << 20
    /// A client that has not finished the handshake in this time is dropped.
    public var handshakeTimeout: Duration = .seconds(10)
    /// A publisher that sends no audio or video for this long is disconnected, freeing the stream name.
    public var publishIdleTimeout: Duration = .seconds(20)
    public var authentication = PublishAuthentication()
    /// Connections beyond this are closed at once. The process may hold 20,000 files on this kind of machine;
    /// the default leaves room for HTTP viewers and the WebRTC side.
    public var maxConnections = 10_000

    public init() {}
}

/// Who may publish. Off (everyone may) until a key is configured.
///
/// Encoders carry the key in the stream name's query, as OBS users type it in the "Stream Key" field:
/// `mystream?key=SECRET` (also accepted: `token=`, or the same query on the app / tcUrl).
public struct PublishAuthentication: Sendable, Equatable {
    /// Keys valid for any stream.
    public var keys: Set<String> = []
    /// Keys valid for one stream, by "app/stream".
    public var streamKeys: [String: String] = [:]

    public init(keys: Set<String> = [], streamKeys: [String: String] = [:]) {
        self.keys = keys
        self.streamKeys = streamKeys
    }

    public var isEnabled: Bool { !keys.isEmpty || !streamKeys.isEmpty }

    /// Whether a publisher of `stream` ("app/stream") presenting `query` may publish.
    public func allows(stream: String, query: String) -> Bool {
        guard isEnabled else { return true }
        let presented = query.split(separator: "&").compactMap { pair -> String? in
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, parts[0] == "key" || parts[0] == "token" else { return nil }
            return String(parts[1])
        }
        return presented.contains { k in keys.contains(k) || streamKeys[stream] == k }
    }
}
