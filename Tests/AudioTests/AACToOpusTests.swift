import Testing
import TestSupport
@testable import Audio

/// The transcoder on ffmpeg's AAC (Fixtures/README.md): what comes out is heard back through libopus's decoder.
@Suite struct AACToOpusTests {
    /// Each channel of the stereo fixture: ffmpeg's sine (1/8 of full scale) upmixed by ffmpeg, 3 dB down.
    static let stereoLevel = 0.125 / 2.squareRoot()

    /// Decodes packets in order, as a receiver would, concealing any sequence gap.
    static func hear(_ packets: [AACToOpus.Packet]) throws -> [Float] {
        let decoder = try OpusDecoder()
        var out: [Float] = []
        for p in packets { out += try decoder.decode(p.payload) }
        return out
    }

    static func transcodeAll(_ stream: AACStream, into t: AACToOpus, offset: Int64 = 0, skip: Set<Int> = []) throws -> [AACToOpus.Packet] {
        try t.configure(stream.config)
        var packets: [AACToOpus.Packet] = []
        for (i, au) in stream.accessUnits.enumerated() where !skip.contains(i) {
            packets += try t.transcode(au.bytes, timestamp: au.timestamp + offset)
        }
        return packets
    }

    @Test func decodesStereoAt44100To48kHz() throws {
        let stream = try AACStream.load("sine-1000hz-44100-stereo.flv")
        #expect(stream.config.prefix(2) == [0x12, 0x10], "AAC LC, 44.1 kHz, stereo (ffmpeg adds an SBR sync extension)")
        let decoder = try AACDecoder(config: stream.config)
        var pcm: [Float] = []
        for au in stream.accessUnits { pcm += try decoder.decode(au.bytes) }
        #expect(decoder.inputRate == 44100 && decoder.inputChannels == 2 && decoder.inputSamples == 1024)
        // Every access unit's 1024 samples at 44.1 kHz, at 48 kHz (less the few the resampler holds back).
        let expected = Double(stream.accessUnits.count * 1024) * 48000 / 44100
        #expect(abs(Double(pcm.count / 2) - expected) < 64, "\(pcm.count / 2) frames, expected about \(expected)")
        let tone = ToneAnalysis(pcm, expected: 1000, amplitude: Self.stereoLevel)
        #expect(abs(tone.frequency - 1000) < 2, "\(tone.frequency) Hz")
        #expect(abs(tone.rms - Self.stereoLevel / 2.squareRoot()) < 0.005, "rms \(tone.rms)")
        #expect(tone.clicks == 0 && tone.gaps == 0)
    }

    @Test func monoIsCopiedToBothChannelsAtItsOwnLevel() throws {
        let stream = try AACStream.load("sine-440hz-22050-mono.flv")
        let decoder = try AACDecoder(config: stream.config)
        var pcm: [Float] = []
        for au in stream.accessUnits { pcm += try decoder.decode(au.bytes) }
        #expect(decoder.inputRate == 22050 && decoder.inputChannels == 1)
        let tone = ToneAnalysis(pcm, expected: 440)
        #expect(abs(tone.frequency - 440) < 2, "\(tone.frequency) Hz")
        #expect(!tone.channelsDiffer)
        #expect(abs(tone.rms - 0.125 / 2.squareRoot()) < 0.005, "rms \(tone.rms): a mono source must not lose 3 dB")
    }

    /// HE-AAC (explicit SBR signalling, ISO/IEC 14496-3 1.6.2.1): object type 5, a 22.05 kHz core, 44.1 kHz output.
    /// There is no HE-AAC encoder on this machine, so the access units are the 22.05 kHz LC fixture's: the decoder
    /// runs the SBR stage without envelope data, which doubles the rate (2048 samples per access unit) and keeps the
    /// tone where it was.
    @Test func heAACDecodesAtTheDoubledRate() throws {
        let low = try AACStream.load("sine-440hz-22050-mono.flv")
        // 00101 (SBR) 0111 (22050) 0001 (mono) 0100 (44100) 00010 (AAC LC core) 000 (GASpecificConfig), padded.
        let config: [UInt8] = [0x2B, 0x8A, 0x08, 0x00]
        let decoder = try AACDecoder(config: config)
        var pcm: [Float] = []
        for au in low.accessUnits { pcm += try decoder.decode(au.bytes) }
        // A mono HE-AAC stream may carry parametric stereo (HE-AAC v2), so libavcodec decodes it to two channels;
        // without PS data they are the same.
        #expect(decoder.inputRate == 44100 && decoder.inputSamples == 2048 && decoder.inputChannels == 2,
                "\(decoder.inputRate) Hz, \(decoder.inputSamples) samples, \(decoder.inputChannels) channels")
        let tone = ToneAnalysis(pcm, expected: 440)
        #expect(abs(tone.frequency - 440) < 2 && tone.gaps == 0 && !tone.channelsDiffer, "\(tone)")
        // Through the transcoder: 46.4 ms access units, 20 ms packets, one clock.
        let t = try AACToOpus()
        let packets = try Self.transcodeAll(AACStream(config: config, accessUnits: low.accessUnits), into: t)
        #expect(t.stats.inputRate == 44100 && t.stats.silenceMs == 0 && t.stats.droppedMs == 0)
        #expect(zip(packets, packets.dropFirst()).allSatisfy { $1.timestamp - $0.timestamp == 960 })
    }

    @Test func twentyMillisecondPacketsOnTheStreamsClock() throws {
        let stream = try AACStream.load("sine-1000hz-44100-stereo.flv")
        let t = try AACToOpus()
        let packets = try Self.transcodeAll(stream, into: t, offset: 10_000)
        #expect(t.stats.bitrate == 96_000)
        #expect(packets.count >= 48 && packets.count <= 53, "\(packets.count) packets for 1 s")
        // The first sample is the first access unit's time; the encoder's look-ahead (312) is taken off.
        #expect(packets.first?.timestamp == (10_000 + stream.accessUnits[0].timestamp) * 48 - 312)
        #expect(zip(packets, packets.dropFirst()).allSatisfy { $1.timestamp - $0.timestamp == 960 })
        #expect(t.stats.silenceMs == 0 && t.stats.droppedMs == 0 && t.stats.restarts == 0)
        let tone = ToneAnalysis(try Self.hear(packets), expected: 1000, amplitude: Self.stereoLevel)
        #expect(abs(tone.frequency - 1000) < 2, "\(tone.frequency) Hz")
        #expect(tone.clicks == 0 && tone.gaps == 0, "clicks \(tone.clicks), gaps \(tone.gaps)")
        #expect(abs(tone.rms - Self.stereoLevel / 2.squareRoot()) < 0.005, "rms \(tone.rms)")
    }

    /// A lost access unit becomes 23 ms of silence, so the clock (and lip sync) hold.
    @Test func aMissingAccessUnitIsFilledWithSilence() throws {
        let stream = try AACStream.load("sine-1000hz-44100-stereo.flv")
        let t = try AACToOpus()
        let packets = try Self.transcodeAll(stream, into: t, skip: [20])
        #expect(abs(t.stats.silenceMs - 1024.0 / 44.1) < 2, "\(t.stats.silenceMs) ms of silence")
        #expect(ToneAnalysis(try Self.hear(packets), expected: 1000, amplitude: Self.stereoLevel).gaps == 1)
        #expect(zip(packets, packets.dropFirst()).allSatisfy { $1.timestamp - $0.timestamp == 960 })
        let last = stream.accessUnits.last!.timestamp * 48
        #expect(abs(packets.last!.timestamp + 960 + 312 - last) < 2400, "the clock kept pace with the timestamps")
    }

    @Test func aRepublishAtAnotherRateGoesOnWithoutAGap() throws {
        let first = try AACStream.load("sine-1000hz-44100-stereo.flv")
        let second = try AACStream.load("sine-440hz-22050-mono.flv")
        let t = try AACToOpus()
        var packets = try Self.transcodeAll(first, into: t)
        let split = packets.count
        let end = first.accessUnits.last!.timestamp + 23
        packets += try Self.transcodeAll(second, into: t, offset: end)
        #expect(t.stats.configurations == 2 && t.stats.restarts == 0)
        #expect(t.stats.inputRate == 22050 && t.stats.inputChannels == 1)
        #expect(zip(packets, packets.dropFirst()).allSatisfy { $1.timestamp - $0.timestamp == 960 }, "one continuous clock")
        let pcm = try Self.hear(packets)
        #expect(abs(ToneAnalysis(pcm[..<(2 * 960 * (split - 2))], expected: 1000, amplitude: Self.stereoLevel).frequency - 1000) < 2)
        #expect(abs(ToneAnalysis(pcm[(2 * 960 * (split + 10))...], expected: 440).frequency - 440) < 2)
    }

    @Test func aLongOutageRestartsTheClock() throws {
        let stream = try AACStream.load("sine-1000hz-44100-stereo.flv")
        let t = try AACToOpus()
        var packets = try Self.transcodeAll(stream, into: t)
        let before = packets.count
        packets += try Self.transcodeAll(stream, into: t, offset: 6000)
        #expect(t.stats.restarts == 1 && t.stats.silenceMs == 0)
        #expect(packets[before].timestamp == (6000 + stream.accessUnits[0].timestamp) * 48 - 312)
    }

    /// A publisher whose timestamps run 10 % slow: audio is left out rather than drifting ahead of the video.
    @Test func timestampsSlowerThanTheSamplesDropAudio() throws {
        let stream = try AACStream.load("sine-1000hz-44100-stereo.flv")
        let t = try AACToOpus()
        try t.configure(stream.config)
        var packets: [AACToOpus.Packet] = []
        for au in stream.accessUnits { packets += try t.transcode(au.bytes, timestamp: au.timestamp * 9 / 10) }
        #expect(t.stats.droppedMs > 50)
        let lastAU = stream.accessUnits.last!.timestamp * 9 / 10 * 48
        #expect(packets.last!.timestamp - lastAU < 40 * 48, "packets stay within a frame and the tolerance of the timestamps")
    }

    @Test(arguments: [
        ([UInt8](), "2-64 bytes"),
        ([0x12], "2-64 bytes"),
        ([0x00, 0x00], "refused"),
        ([0x17, 0x90], "refused"),
        ([0xFF, 0xFF, 0xFF, 0xFF], "refused"),
    ])
    func aBrokenAudioSpecificConfigIsRefused(config: [UInt8], words: String) throws {
        let t = try AACToOpus()
        #expect {
            try t.configure(config)
        } throws: { error in
            guard case AudioError.badConfiguration(let why) = error else { return false }
            return why.contains(words)
        }
        // Frames after it are refused with the same reason, and a good configuration recovers.
        #expect(throws: AudioError.self) { try t.transcode([0x21, 0x10, 0x04], timestamp: 0) }
        let stream = try AACStream.load("sine-1000hz-44100-stereo.flv")
        #expect(try Self.transcodeAll(stream, into: t).count > 40)
    }

    @Test func framesBeforeAConfigurationAreRefused() throws {
        let t = try AACToOpus()
        #expect(throws: AudioError.notConfigured) { try t.transcode([0x21, 0x10], timestamp: 0) }
    }

    @Test func emptyAndGarbageFramesThrowAndTheToneGoesOn() throws {
        let stream = try AACStream.load("sine-1000hz-44100-stereo.flv")
        let t = try AACToOpus()
        try t.configure(stream.config)
        var rng = SplitMix64(state: 7)
        var packets: [AACToOpus.Packet] = []
        var failed = 0
        for (i, au) in stream.accessUnits.enumerated() {
            let bytes: [UInt8]
            switch i {
            case 10: bytes = []
            case 11: bytes = (0..<200).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case 12: bytes = Array(au.bytes.prefix(3))
            default: bytes = au.bytes
            }
            do { packets += try t.transcode(bytes, timestamp: au.timestamp) } catch {
                failed += 1
                if i == 10 { #expect(error == .decodeFailed("an empty AAC frame")) }
            }
        }
        #expect(failed >= 2 && t.stats.decodeErrors == failed)
        #expect(zip(packets, packets.dropFirst()).allSatisfy { $1.timestamp - $0.timestamp == 960 })
        let pcm = try Self.hear(packets)
        let after = ToneAnalysis(pcm[(2 * 960 * 20)...], expected: 1000, amplitude: Self.stereoLevel)
        #expect(abs(after.frequency - 1000) < 2 && after.clicks == 0 && after.gaps == 0, "\(after)")
    }

    /// 3,000 damaged configurations and access units: each is refused or decoded, none traps or hangs, and the
    /// clock never goes backwards.
    @Test func mutatedInputNeverTraps() throws {
        let stream = try AACStream.load("sine-1000hz-44100-stereo.flv")
        var rng = SplitMix64(state: 0xA0D10)
        let t = try AACToOpus()
        var last: Int64?
        for round in 0..<3000 {
            if round % 100 == 0 { _ = try? t.configure(round % 300 == 0 ? rng.mutate(stream.config, count: 2) : stream.config) }
            let au = stream.accessUnits[round % stream.accessUnits.count]
            let bytes = round % 3 == 0 ? rng.mutate(au.bytes, count: 1 + round % 8) : au.bytes
            guard let packets = try? t.transcode(bytes, timestamp: Int64(round) * 23) else { continue }
            for p in packets {
                if let last { #expect(p.timestamp > last) }
                last = p.timestamp
            }
        }
        #expect(t.stats.accessUnits > 2000)
    }
}
