import Codecs
import NIOCore
import Testing
import TestSupport
@testable import MP4

func avc(sps: [[UInt8]], pps: [[UInt8]] = [[0x68, 0xEB, 0xE3, 0xCB, 0x22, 0xC0]], nalLengthSize: Int = 4) -> Track.Media {
    .h264(H264.AVCDecoderConfigurationRecord(
        profileIndication: 0x64, profileCompatibility: 0, levelIndication: 0x1E, nalLengthSize: nalLengthSize,
        sequenceParameterSets: sps, pictureParameterSets: pps))
}

let goodSPS = [UInt8](hex: "6764001eacd940a02ff970110000030001000003003c0f162d96")
let lcStereo = AAC.AudioSpecificConfig(objectType: 2, samplingFrequency: 44100, channelConfiguration: 2)

/// Tracks an init segment must refuse, each with the error it must name.
let malformedTracks: [(String, [Track], MP4Error)] = [
    ("no tracks", [], .noTracks),
    ("track_ID 0", [Track(id: 0, timescale: 90000, media: avc(sps: [goodSPS]))], .invalidTrackID(0)),
    ("duplicate track_ID", [Track(id: 1, timescale: 90000, media: avc(sps: [goodSPS])),
                            Track(id: 1, timescale: 44100, media: .aac(lcStereo))], .invalidTrackID(1)),
    ("timescale 0", [Track(id: 2, timescale: 0, media: .aac(lcStereo))], .zeroTimescale(trackID: 2)),
    ("no SPS", [Track(id: 1, timescale: 90000, media: avc(sps: []))], .missingParameterSets(trackID: 1)),
    ("no PPS", [Track(id: 1, timescale: 90000, media: avc(sps: [goodSPS], pps: []))], .missingParameterSets(trackID: 1)),
    ("empty SPS", [Track(id: 1, timescale: 90000, media: avc(sps: [[]]))],
     .invalidSequenceParameterSet(trackID: 1, .truncated("NAL header"))),
    ("PPS where the SPS belongs", [Track(id: 1, timescale: 90000, media: avc(sps: [[0x68, 0xEB, 0xE3]]))],
     .invalidSequenceParameterSet(trackID: 1, .invalid("NAL unit type 8 is not an SPS"))),
    ("SPS without its NAL header", [Track(id: 1, timescale: 90000, media: avc(sps: [Array(goodSPS.dropFirst())]))],
     .invalidSequenceParameterSet(trackID: 1, .invalid("NAL unit type 4 is not an SPS"))),
    ("truncated SPS", [Track(id: 1, timescale: 90000, media: avc(sps: [Array(goodSPS.prefix(6))]))],
     .invalidSequenceParameterSet(trackID: 1, .truncated("max_num_ref_frames"))),
    ("3-byte NAL lengths", [Track(id: 1, timescale: 90000, media: avc(sps: [goodSPS], nalLengthSize: 3))],
     .invalidNALLengthSize(trackID: 1, 3)),
    ("sampling frequency 0", [Track(id: 2, timescale: 1, media: .aac(.init(objectType: 2, samplingFrequency: 0, channelConfiguration: 2)))],
     .invalidSamplingFrequency(trackID: 2, 0)),
    ("negative sampling frequency", [Track(id: 2, timescale: 1, media: .aac(.init(objectType: 2, samplingFrequency: -44100, channelConfiguration: 2)))],
     .invalidSamplingFrequency(trackID: 2, -44100)),
    ("sampling frequency over 24 bits", [Track(id: 2, timescale: 1, media: .aac(.init(objectType: 2, samplingFrequency: 1 << 24, channelConfiguration: 2)))],
     .invalidSamplingFrequency(trackID: 2, 1 << 24)),
    ("bad track after a good one", [Track(id: 1, timescale: 44100, media: .aac(lcStereo)),
                                    Track(id: 2, timescale: 90000, media: avc(sps: []))], .missingParameterSets(trackID: 2)),
]

@Suite struct MalformedTrackTests {
    @Test(arguments: malformedTracks.indices)
    func throwsNamedErrorAndWritesNothing(index: Int) {
        let (name, tracks, expected) = malformedTracks[index]
        var out = ByteBuffer(bytes: [9, 9])
        #expect(throws: expected, "\(name)") { try InitSegment.write(tracks: tracks, to: &out) }
        #expect(bytes(out) == [9, 9], "\(name): output must be untouched")
    }

    /// Randomly damaged SPS bytes either throw MP4Error or give a well-formed init segment, never a trap.
    @Test func mutatedSPSNeverTraps() throws {
        var rng = SplitMix64(state: 0x4D50_3420)
        var accepted = 0
        for _ in 0..<3000 {
            let sps = rng.mutate(goodSPS, count: Int.random(in: 1...6, using: &rng))
            var out = ByteBuffer()
            do {
                try InitSegment.write(tracks: [Track(id: 1, timescale: 90000, media: avc(sps: [sps]))], to: &out)
                accepted += 1
                let boxes = try parseBoxes(bytes(out))
                #expect(boxes.map(\.type) == ["ftyp", "moov"])
            } catch let error as MP4Error {
                guard case .invalidSequenceParameterSet = error else {
                    Issue.record("unexpected \(error)")
                    continue
                }
                #expect(out.readableBytes == 0)
            }
        }
        #expect(accepted > 0)   // some mutations only touch bits the size does not depend on
    }
}
