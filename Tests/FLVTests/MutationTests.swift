import NIOCore
import Testing
import TestSupport
@testable import FLV

/// Deterministic mutation of the captured file and of tag headers: parsers return or throw,
/// never trap or hang.
@Suite struct MutationTests {
    @Test func fileWalkSurvivesCorruption() throws {
        let original = try Fixture.bytes("small.flv")
        var rng = SplitMix64(state: 1)
        for _ in 0..<300 {
            var bytes = original
            for _ in 0..<8 {
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                bytes[i] = UInt8.random(in: 0...255, using: &rng)
            }
            var buffer = ByteBuffer(bytes: bytes)
            guard (try? FLVHeader(parsing: &buffer)) != nil else { continue }
            while true {
                guard let tag = try? FLVTag.parse(from: &buffer, maxBodySize: 1 << 20) else { break }
                switch tag.type {
                case .video: _ = try? VideoTagHeader(parsing: tag.body)
                case .audio: _ = try? AudioTagHeader(parsing: tag.body)
                case .script: break
                }
            }
        }
    }

    @Test func randomTagHeaders() {
        var rng = SplitMix64(state: 9)
        for _ in 0..<20000 {
            let count = Int.random(in: 0...12, using: &rng)
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if let video = try? VideoTagHeader(parsing: ByteBuffer(bytes: bytes)) {
                #expect(video.headerSize <= bytes.count)
            }
            if let audio = try? AudioTagHeader(parsing: ByteBuffer(bytes: bytes)) {
                #expect(audio.headerSize <= bytes.count)
            }
        }
    }
}
