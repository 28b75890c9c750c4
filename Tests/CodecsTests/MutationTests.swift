import NIOCore
import Testing
import TestSupport
@testable import Codecs

/// Deterministic mutation of captured bytes: every parser must return or throw, never trap
/// or hang. A failure here shows up as a crashed test process.
@Suite struct MutationTests {
    static func mutate(_ bytes: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var out = bytes
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            guard !out.isEmpty else { break }
            let i = Int.random(in: 0..<out.count, using: &rng)
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: out[i] = UInt8.random(in: 0...255, using: &rng)
            case 1: out[i] ^= 1 << UInt8.random(in: 0...7, using: &rng)
            case 2: out.removeSubrange(i...)
            default: out.insert(UInt8.random(in: 0...255, using: &rng), at: i)
            }
        }
        return out
    }

    @Test(arguments: ["main640.avcc", "hint.avcc", "h444.avcc", "base640.avcc"])
    func avcRecordAndSPS(_ file: String) throws {
        let original = try Fixture.bytes(file)
        var rng = SplitMix64(state: 42)
        for _ in 0..<3000 {
            let bytes = Self.mutate(original, &rng)
            if let record = try? H264.AVCDecoderConfigurationRecord(parsing: ByteBuffer(bytes: bytes)) {
                for sps in record.sequenceParameterSets { _ = try? H264.SequenceParameterSet(parsing: sps) }
                var out = ByteBuffer()
                record.write(to: &out)
            }
            _ = try? H264.SequenceParameterSet(parsing: Array(bytes.dropFirst(8)))
        }
    }

    @Test func audioSpecificConfig() throws {
        let original = try Fixture.bytes("aac48s.asc") + [0x9D, 0x48, 0x80]
        var rng = SplitMix64(state: 7)
        for _ in 0..<5000 {
            if let asc = try? AAC.AudioSpecificConfig(parsing: ByteBuffer(bytes: Self.mutate(original, &rng))) {
                var out = ByteBuffer()
                asc.write(to: &out)
                #expect(try AAC.AudioSpecificConfig(parsing: out).samplingFrequency == asc.samplingFrequency)
            }
        }
    }

    @Test func accessUnitSplitting() throws {
        let original = Array(try Fixture.bytes("small.key.au").prefix(64)) + [0, 0, 0, 2, 0x41, 0x9A]
        var rng = SplitMix64(state: 3)
        for _ in 0..<3000 {
            let bytes = Self.mutate(original, &rng)
            for size in [1, 2, 4] {
                var out = ByteBuffer()
                try? H264.annexB(avcc: ByteBuffer(bytes: bytes), nalLengthSize: size, into: &out)
            }
        }
    }
}
