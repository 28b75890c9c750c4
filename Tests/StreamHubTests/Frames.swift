import NIOCore
@testable import StreamHub

/// FLV tag bodies as ffmpeg writes them for H.264 and AAC (FLV spec E.4.2.1 and E.4.3.1).
enum Frames {
    static func video(key: Bool, bytes: Int = 100) -> ByteBuffer {
        ByteBuffer(bytes: [key ? 0x17 : 0x27, 0x01, 0, 0, 0] + [UInt8](repeating: 0xAB, count: bytes))
    }
    /// The AVC sequence header ffmpeg 5.1 (libx264, 640x360 High) writes into FLV.
    static let avcConfig = ByteBuffer(bytes: [
        0x17, 0x00, 0x00, 0x00, 0x00, 0x01, 0x64, 0x00, 0x1E, 0xFF, 0xE1, 0x00, 0x1A, 0x67, 0x64, 0x00,
        0x1E, 0xAC, 0xD9, 0x40, 0xA0, 0x2F, 0xF9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00,
        0x03, 0x00, 0x3C, 0x0F, 0x16, 0x2D, 0x96, 0x01, 0x00, 0x04, 0x68, 0xEF, 0x8F, 0xCB, 0xFD, 0xF8,
        0xF8, 0x00,
    ])
    static let aacConfig = ByteBuffer(bytes: [0xAF, 0x00, 0x12, 0x10])
    static func audio(bytes: Int = 20) -> ByteBuffer {
        ByteBuffer(bytes: [0xAF, 0x01] + [UInt8](repeating: 0x21, count: bytes))
    }

    static func frame(_ kind: MediaFrame.Kind, _ payload: ByteBuffer, ts: UInt32, at: UInt64 = 0) -> MediaFrame {
        MediaFrame(kind: kind, timestamp: ts, payload: payload, receivedAt: at)
    }
}

/// A clock tests move by hand.
final class TestClock: @unchecked Sendable {
    var nanoseconds: UInt64 = 1_000_000_000
    func advance(ms: UInt64) { nanoseconds += ms * 1_000_000 }
    var clock: StreamHub.Clock { { [unowned self] in self.nanoseconds } }
}
