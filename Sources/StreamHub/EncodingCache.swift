import NIOCore
import Locks

/// The encodings of one frame that every viewer of a kind shares (its FLV tag, its RTMP chunks), made by the
/// first viewer that needs one and reused, without a copy, by all the others.
public final class EncodingCache: Sendable {
    /// Which encoding: a format tag and two parameters (for RTMP: message stream id and chunk size).
    public struct Key: Hashable, Sendable {
        public var format: UInt8
        public var a: UInt32
        public var b: UInt32

        public init(format: UInt8, a: UInt32 = 0, b: UInt32 = 0) {
            self.format = format
            self.a = a
            self.b = b
        }
    }

    /// A frame has one or two encodings in practice: a list beats a dictionary.
    let slots = Mutex<[(Key, ByteBuffer)]>([])

    public init() {}

    public func encoding(_ key: Key, make: () -> ByteBuffer) -> ByteBuffer {
        slots.withLock { slots in
            if let hit = slots.first(where: { $0.0 == key }) { return hit.1 }
            let made = make()
            slots.append((key, made))
            return made
        }
    }
}
