import Codecs
import NIOCore
import Testing
@testable import MPEGTS

func asc(_ bytes: [UInt8]) throws -> AAC.AudioSpecificConfig {
    try AAC.AudioSpecificConfig(parsing: ByteBuffer(bytes: bytes))
}

func bytes(_ buffer: ByteBuffer) -> [UInt8] { Array(buffer.readableBytesView) }

let sampleAVC = H264.AVCDecoderConfigurationRecord(
    profileIndication: 0x42, profileCompatibility: 0xC0, levelIndication: 0x1E, nalLengthSize: 4,
    sequenceParameterSets: [[0x67, 0x42, 0xC0, 0x1E]], pictureParameterSets: [[0x68, 0xCE, 0x3C, 0x80]])

/// AVCC access unit from NAL units with 4-byte lengths.
func avcc(_ nals: [[UInt8]]) -> ByteBuffer {
    var b = ByteBuffer()
    for nal in nals { b.writeInteger(UInt32(nal.count)); b.writeBytes(nal) }
    return b
}

@Suite struct ADTSTests {
    @Test func header44100StereoLC() throws {
        let writer = try ADTSWriter(config: try asc([0x12, 0x10]))
        var out = ByteBuffer()
        try writer.write(frame: ByteBuffer(bytes: [UInt8](repeating: 0xAB, count: 100)), to: &out)
        // length 107 = 0x6B: profile 1, sfi 4, ch 2 -> 50 80; 0x6B>>3 = 0x0D; (0x6B&7)<<5|0x1F = 0x7F.
        #expect(Array(bytes(out).prefix(7)) == [0xFF, 0xF1, 0x50, 0x80, 0x0D, 0x7F, 0xFC])
        #expect(out.readableBytes == 107)
    }

    @Test func header48000Mono() throws {
        let writer = try ADTSWriter(config: try asc([0x11, 0x88]))
        var out = ByteBuffer()
        try writer.write(frame: ByteBuffer(bytes: [UInt8](repeating: 1, count: 2041)), to: &out)
        // length 2048 = 0x800: sfi 3, ch 1 -> 4C 40; bit 11 set -> byte3 low bits 01; 0x800>>3 = 0x00.
        #expect(Array(bytes(out).prefix(7)) == [0xFF, 0xF1, 0x4C, 0x41, 0x00, 0x1F, 0xFC])
    }

    @Test func heAACUsesCoreProfileAndRate() throws {
        // Explicit SBR: aot 5, core sfi 6 (24 kHz), ch 2, ext sfi 3 (48 kHz), core aot 2.
        let config = try asc([0x2B, 0x11, 0x88, 0x00])
        #expect(config.extensionObjectType == 5)
        var out = ByteBuffer()
        try ADTSWriter(config: config).write(frame: ByteBuffer(bytes: [0]), to: &out)
        #expect(bytes(out)[2] == 0x40 | 6 << 2)
    }

    @Test func frameLengthLimit() throws {
        let writer = try ADTSWriter(config: try asc([0x12, 0x10]))
        var out = ByteBuffer()
        try writer.write(frame: ByteBuffer(bytes: [UInt8](repeating: 0, count: 8184)), to: &out)
        #expect(Array(bytes(out)[3...5]) == [0x83, 0xFF, 0xFF])  // 8191 = all ones
        var rejected = ByteBuffer()
        #expect(throws: TSError.self) {
            try writer.write(frame: ByteBuffer(bytes: [UInt8](repeating: 0, count: 8185)), to: &rejected)
        }
        #expect(rejected.readableBytes == 0)
    }
}

@Suite struct PacketTests {
    @Test func timestampEncoding() {
        var out = ByteBuffer()
        PESHeader.writeTimestamp(0x1_2345_6789, prefix: 0b0010, to: &out)
        #expect(bytes(out) == [0x29, 0x8D, 0x15, 0xCF, 0x13])
        out.clear()
        PESHeader.writeTimestamp(0, prefix: 0b0010, to: &out)
        #expect(bytes(out) == [0x21, 0x00, 0x01, 0x00, 0x01])
        out.clear()
        // Negative and > 33-bit values wrap like the 33-bit clock.
        PESHeader.writeTimestamp(-1, prefix: 0b0001, to: &out)
        #expect(bytes(out) == [0x1F, 0xFF, 0xFF, 0xFF, 0xFF])
        #expect(TSTestParser.timestamp(bytes(out)[...]) == 0x1_FFFF_FFFF)
    }

    @Test func continuityCounterWraps() throws {
        var writer = TSPacketWriter(pid: 0x100)
        var out = ByteBuffer()
        writer.write(payload: ByteBuffer(bytes: [UInt8](repeating: 7, count: 184 * 20)), to: &out)
        #expect(out.readableBytes == 188 * 20)
        let ccs = stride(from: 3, to: out.readableBytes, by: 188).map { bytes(out)[$0] & 0x0F }
        #expect(ccs == (0..<20).map { UInt8($0 % 16) })
        #expect(writer.continuityCounter == 4)
    }

    @Test(arguments: [(183, [UInt8(0x00)]), (182, [0x01, 0x00]), (181, [0x02, 0x00, 0xFF]), (184, [])])
    func stuffing(payloadSize: Int, field: [UInt8]) {
        var writer = TSPacketWriter(pid: 0x101)
        var out = ByteBuffer()
        writer.write(payload: ByteBuffer(bytes: [UInt8](repeating: 0x5A, count: payloadSize)), to: &out)
        let p = bytes(out)
        #expect(p.count == 188)
        #expect(p[3] >> 4 == (field.isEmpty ? 1 : 3))
        #expect(Array(p[4..<4 + field.count]) == field)
        #expect(p[(4 + field.count)...].allSatisfy { $0 == 0x5A })
    }

    @Test func pcrAndRandomAccess() throws {
        var writer = TSPacketWriter(pid: 0x100)
        var out = ByteBuffer()
        // Minimal PES header so the test parser accepts the unit.
        let pes = [0, 0, 1, 0xE0, 0, 0, 0x80, 0, 0] + [UInt8](repeating: 1, count: 291)
        writer.write(payload: ByteBuffer(bytes: pes), randomAccess: true, pcr: 0x1_2345_6789, to: &out)
        let parsed = try TSTestParser(bytes(out))
        #expect(parsed.packets.count == 2)
        #expect(parsed.packets[0].randomAccess && parsed.packets[0].pcr == 0x1_2345_6789)
        #expect(parsed.packets[1].adaptationField?.first == 0)  // stuffing only, no flags
        #expect(parsed.packets.reduce(0) { $0 + $1.payload.count } == 300)
    }
}

@Suite struct MuxerTests {
    @Test func tablesAndSamples() throws {
        var mux = try TSMuxer(videoConfig: sampleAVC, audioConfig: try asc([0x11, 0x88]))
        var out = ByteBuffer()
        mux.writeTables(to: &out)
        try mux.write(TSSample(kind: .video, dts: 900, pts: 4500, isKeyframe: true, data: avcc([[0x65, 1, 2, 3]])), to: &out)
        try mux.write(TSSample(kind: .audio, dts: 900, pts: 900, isKeyframe: true, data: ByteBuffer(bytes: [9, 9])), to: &out)
        try mux.write(TSSample(kind: .video, dts: 4500, pts: 4500, isKeyframe: false,
                               data: avcc([[0x09, 0xF0], [0x41, 7]])), to: &out)
        mux.writeTables(to: &out)
        let ts = try TSTestParser(bytes(out))
        #expect(ts.pat == [1: 0x1000])
        #expect(ts.pcrPID == 0x100)
        #expect(ts.streamTypes == [0x100: 0x1B, 0x101: 0x0F])
        try #require(ts.pes.count == 3)
        let (key, delta, audio) = (ts.pes[0], ts.pes[1], ts.pes[2])
        #expect(key.streamID == 0xE0 && key.pts == 4500 && key.dts == 900 && key.randomAccess && key.pcr == 900)
        #expect(key.packetLength == 0)
        #expect(key.payload == [0, 0, 0, 1, 0x09, 0xF0, 0, 0, 0, 1, 0x67, 0x42, 0xC0, 0x1E,
                                0, 0, 0, 1, 0x68, 0xCE, 0x3C, 0x80, 0, 0, 0, 1, 0x65, 1, 2, 3])
        // Existing AUD is not duplicated; no parameter sets before a non-IDR.
        #expect(delta.pts == 4500 && delta.dts == nil && !delta.randomAccess && delta.pcr == 4500)
        #expect(delta.payload == [0, 0, 0, 1, 0x09, 0xF0, 0, 0, 0, 1, 0x41, 7])
        #expect(audio.streamID == 0xC0 && audio.pts == 900 && audio.dts == nil && audio.pcr == nil)
        #expect(audio.packetLength == 3 + 5 + 9)
        #expect(audio.payload.count == 9 && audio.payload[0] == 0xFF)
    }

    @Test func audioOnlyCarriesPCR() throws {
        var mux = try TSMuxer(videoConfig: nil, audioConfig: try asc([0x12, 0x10]))
        var out = ByteBuffer()
        mux.writeTables(to: &out)
        try mux.write(TSSample(kind: .audio, dts: 0, pts: 1234, isKeyframe: true, data: ByteBuffer(bytes: [1])), to: &out)
        let ts = try TSTestParser(bytes(out))
        #expect(ts.pcrPID == 0x101 && ts.streamTypes == [0x101: 0x0F])
        #expect(ts.pes.first?.pcr == 1234)
    }

    enum Expected { case configuration, frame }

    static func kind(_ body: () throws -> Void) -> Expected? {
        do { try body(); return nil } catch let error as TSError {
            switch error {
            case .invalidConfiguration: return .configuration
            case .invalidFrame: return .frame
            }
        } catch { return nil }
    }

    static var malformed: [(String, Expected, () throws -> Void)] { [
        ("no configs", .configuration, { _ = try TSMuxer(videoConfig: nil, audioConfig: nil) }),
        ("nalLengthSize 3", .configuration, {
            var c = sampleAVC; c.nalLengthSize = 3
            _ = try TSMuxer(videoConfig: c, audioConfig: nil)
        }),
        ("no SPS", .configuration, {
            var c = sampleAVC; c.sequenceParameterSets = []
            _ = try TSMuxer(videoConfig: c, audioConfig: nil)
        }),
        ("object type 5 as core", .configuration, {
            _ = try ADTSWriter(config: AAC.AudioSpecificConfig(objectType: 5, samplingFrequency: 44100, channelConfiguration: 2))
        }),
        ("explicit rate", .configuration, {
            _ = try ADTSWriter(config: AAC.AudioSpecificConfig(objectType: 2, samplingFrequency: 12345, channelConfiguration: 2))
        }),
        ("channel config 0", .configuration, {
            _ = try ADTSWriter(config: AAC.AudioSpecificConfig(objectType: 2, samplingFrequency: 44100, channelConfiguration: 0))
        }),
        ("960 frames", .configuration, {
            _ = try ADTSWriter(config: AAC.AudioSpecificConfig(objectType: 2, samplingFrequency: 44100, channelConfiguration: 2, frameLengthFlag: true))
        }),
        ("NAL length past end", .frame, {
            var m = try TSMuxer(videoConfig: sampleAVC, audioConfig: nil)
            var b = ByteBuffer(); b.writeInteger(UInt32(50)); b.writeBytes([0x65, 1])
            var out = ByteBuffer()
            defer { #expect(out.readableBytes == 0) }
            try m.write(TSSample(kind: .video, dts: 0, pts: 0, isKeyframe: true, data: b), to: &out)
        }),
        ("truncated NAL length", .frame, {
            var m = try TSMuxer(videoConfig: sampleAVC, audioConfig: nil)
            var out = ByteBuffer()
            try m.write(TSSample(kind: .video, dts: 0, pts: 0, isKeyframe: true, data: ByteBuffer(bytes: [0, 0])), to: &out)
        }),
        ("empty access unit", .frame, {
            var m = try TSMuxer(videoConfig: sampleAVC, audioConfig: nil)
            var out = ByteBuffer()
            try m.write(TSSample(kind: .video, dts: 0, pts: 0, isKeyframe: true, data: ByteBuffer()), to: &out)
        }),
        ("PTS before DTS", .frame, {
            var m = try TSMuxer(videoConfig: sampleAVC, audioConfig: nil)
            var out = ByteBuffer()
            try m.write(TSSample(kind: .video, dts: 10, pts: 5, isKeyframe: true, data: avcc([[0x65, 1]])), to: &out)
        }),
        ("audio without audio config", .frame, {
            var m = try TSMuxer(videoConfig: sampleAVC, audioConfig: nil)
            var out = ByteBuffer()
            try m.write(TSSample(kind: .audio, dts: 0, pts: 0, isKeyframe: true, data: ByteBuffer(bytes: [1])), to: &out)
        }),
        ("video without video config", .frame, {
            var m = try TSMuxer(videoConfig: nil, audioConfig: try asc([0x12, 0x10]))
            var out = ByteBuffer()
            try m.write(TSSample(kind: .video, dts: 0, pts: 0, isKeyframe: true, data: avcc([[0x65, 1]])), to: &out)
        }),
        ("empty audio frame", .frame, {
            var m = try TSMuxer(videoConfig: nil, audioConfig: try asc([0x12, 0x10]))
            var out = ByteBuffer()
            try m.write(TSSample(kind: .audio, dts: 0, pts: 0, isKeyframe: true, data: ByteBuffer()), to: &out)
        }),
        ("oversized audio frame", .frame, {
            var m = try TSMuxer(videoConfig: nil, audioConfig: try asc([0x12, 0x10]))
            var out = ByteBuffer()
            defer { #expect(out.readableBytes == 0) }
            try m.write(TSSample(kind: .audio, dts: 0, pts: 0, isKeyframe: true,
                                 data: ByteBuffer(bytes: [UInt8](repeating: 0, count: 9000))), to: &out)
        }),
    ] }

    @Test func malformedInputsThrowNamedErrors() {
        for (name, expected, body) in Self.malformed {
            #expect(Self.kind(body) == expected, "\(name)")
        }
    }
}
