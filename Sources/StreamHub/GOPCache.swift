/// The frames since the latest keyframe, so a new viewer starts decoding at once (pure).
///
/// Audio between keyframes is kept with the video so that the viewer hears what it sees. If a GOP grows
/// past `maxBytes` (an encoder with a huge keyframe interval) the cache empties and waits for the next
/// keyframe: new viewers then wait for it, but memory stays bounded.
public struct GOPCache: Sendable {
    public var maxBytes: Int
    public private(set) var frames: [MediaFrame] = []
    public private(set) var bytes = 0

    public init(maxBytes: Int) { self.maxBytes = maxBytes }

    public mutating func add(_ frame: MediaFrame) {
        guard !frame.isConfiguration else { return }
        if frame.isKeyframe {
            frames.removeAll(keepingCapacity: true)
            bytes = 0
        } else if frames.isEmpty {
            return  // no keyframe yet: nothing a decoder could start from
        }
        frames.append(frame)
        bytes += frame.size
        if bytes > maxBytes { clear() }
    }

    public mutating func clear() {
        frames.removeAll()
        bytes = 0
    }
}
