import Codecs
import NIOCore
import Testing
@testable import MP4

/// Video on track 1, audio on track 2, as the interop test and a live stream use them.
func ffmpegTracks() throws -> [Track] {
    [
        Track(id: 1, timescale: 90000, media: .h264(try ffmpegAVCRecord())),
        Track(id: 2, timescale: 44100, media: .aac(try ffmpegASC())),
    ]
}

func initSegment(_ tracks: [Track]) throws -> [TestBox] {
    var out = ByteBuffer()
    try InitSegment.write(tracks: tracks, to: &out)
    let boxes = try parseBoxes(bytes(out))
    #expect(boxes.reduce(0) { $0 + $1.size } == out.readableBytes)
    return boxes
}

@Suite struct InitSegmentTests {
    @Test func boxTreeFollowsISO14496_12() throws {
        let boxes = try initSegment(try ffmpegTracks())
        #expect(boxes.map(\.type) == ["ftyp", "moov"])
        let moov = boxes[1]
        #expect(moov.childTypes == ["mvhd", "trak", "trak", "mvex"])
        for trak in moov.children("trak") {
            #expect(trak.childTypes == ["tkhd", "mdia"])
            #expect(trak["mdia"]?.childTypes == ["mdhd", "hdlr", "minf"])
            #expect(trak["mdia/minf/dinf/dref"]?.childTypes == ["url "])
            #expect(trak["mdia/minf/dinf/dref/url "]?.flags == 1)
            #expect(trak["mdia/minf/stbl"]?.childTypes == ["stsd", "stts", "stsc", "stsz", "stco"])
            // Empty sample tables: every sample lives in a fragment.
            for table in ["stts", "stsc", "stco"] {
                #expect(trak["mdia/minf/stbl/\(table)"]?.payload == [0, 0, 0, 0, 0, 0, 0, 0])
            }
            #expect(trak["mdia/minf/stbl/stsz"]?.payload == [UInt8](repeating: 0, count: 12))
        }
        let video = moov.children("trak")[0], audio = moov.children("trak")[1]
        #expect(video["mdia/minf"]?.childTypes == ["vmhd", "dinf", "stbl"])
        #expect(video["mdia/minf/vmhd"]?.flags == 1)
        #expect(audio["mdia/minf"]?.childTypes == ["smhd", "dinf", "stbl"])
        #expect(video["mdia/minf/stbl/stsd"]?.childTypes == ["avc1"])
        #expect(audio["mdia/minf/stbl/stsd"]?.childTypes == ["mp4a"])
    }

    @Test func ftypBrands() throws {
        let ftyp = try initSegment(try ffmpegTracks())[0]
        #expect(ftyp.fourCC(0) == "iso6")
        #expect(ftyp.u32(4) == 0)
        let brands = stride(from: 8, to: ftyp.payload.count, by: 4).map { ftyp.fourCC($0) }
        #expect(brands == ["iso6", "cmfc", "isom", "mp41"])
    }

    @Test func movieAndTrackHeaders() throws {
        let moov = try initSegment(try ffmpegTracks())[1]
        let mvhd = try #require(moov["mvhd"])
        #expect(mvhd.version == 0 && mvhd.payload.count == 100)
        #expect(mvhd.u32(12) == 1000 && mvhd.u32(16) == 0)       // timescale, duration
        #expect(mvhd.u32(96) == 3)                                // next_track_ID

        let (video, audio) = (moov.children("trak")[0], moov.children("trak")[1])
        let vtkhd = try #require(video["tkhd"]), atkhd = try #require(audio["tkhd"])
        #expect(vtkhd.flags == 3 && atkhd.flags == 3)
        #expect(vtkhd.u32(12) == 1 && atkhd.u32(12) == 2)        // track_ID
        #expect(vtkhd.u16(36) == 0 && atkhd.u16(36) == 0x0100)   // volume
        #expect(vtkhd.u32(76) == 640 << 16 && vtkhd.u32(80) == 360 << 16)
        #expect(atkhd.u32(76) == 0 && atkhd.u32(80) == 0)

        let vmdhd = try #require(video["mdia/mdhd"]), amdhd = try #require(audio["mdia/mdhd"])
        #expect(vmdhd.u32(12) == 90000 && amdhd.u32(12) == 44100)
        #expect(vmdhd.u16(20) == 0x55C4)                         // "und"
        #expect(video["mdia/hdlr"]?.fourCC(8) == "vide" && audio["mdia/hdlr"]?.fourCC(8) == "soun")
    }

    @Test func trexPerTrack() throws {
        let tracks = [
            Track(id: 7, timescale: 90000, media: .h264(try ffmpegAVCRecord())),
            Track(id: 3, timescale: 48000, media: .aac(try ffmpegASC())),
        ]
        let moov = try initSegment(tracks)[1]
        let trex = try #require(moov["mvex"]).children("trex")
        #expect(trex.map { $0.u32(4) } == [7, 3])
        #expect(trex.allSatisfy { $0.u32(8) == 1 && $0.payload.count == 24 })
        #expect(moov["mvhd"]?.u32(96) == 8)
    }

    @Test func nextTrackIDDoesNotOverflow() throws {
        let moov = try initSegment([Track(id: .max, timescale: 1, media: .aac(try ffmpegASC()))])[1]
        #expect(moov["mvhd"]?.u32(96) == .max)
    }

    @Test func avc1CarriesTheRecord() throws {
        let moov = try initSegment(try ffmpegTracks())[1]
        let avc1 = try #require(moov["trak/mdia/minf/stbl/stsd/avc1"])
        #expect(avc1.u16(6) == 1)                                 // data_reference_index
        #expect(avc1.u16(24) == 640 && avc1.u16(26) == 360)
        #expect(avc1.u32(28) == 0x0048_0000 && avc1.u32(32) == 0x0048_0000)
        #expect(avc1.u16(40) == 1)                                // frame_count
        #expect(avc1.u16(74) == 0x18 && avc1.u16(76) == 0xFFFF)   // depth, pre_defined -1
        #expect(avc1.childTypes == ["avcC"])
        #expect(avc1.children[0].payload == ffmpegAVCRecordBytes)
    }

    @Test func mp4aCarriesTheConfig() throws {
        let moov = try initSegment(try ffmpegTracks())[1]
        let mp4a = try #require(moov.children("trak")[1]["mdia/minf/stbl/stsd/mp4a"])
        #expect(mp4a.u16(6) == 1)
        #expect(mp4a.u16(16) == 1 && mp4a.u16(18) == 16)          // channelcount (mono), samplesize
        #expect(mp4a.u32(24) == 44100 << 16)
        #expect(mp4a.childTypes == ["esds"])
        var expected = ByteBuffer()
        try ffmpegASC().write(to: &expected)
        #expect(try decoderSpecificInfo(mp4a.children[0]) == bytes(expected))
    }

    @Test(arguments: [
        // (ASC bytes, channelcount, samplerate field)
        ([UInt8](hex: "1210"), UInt16(2), UInt32(44100) << 16),   // LC stereo
        ([UInt8](hex: "1200"), 2, 44100 << 16),                   // channelConfiguration 0: 2
        ([UInt8](hex: "1238"), 8, 44100 << 16),                   // 7 is 7.1
        ([UInt8](hex: "1010"), 2, 0),                             // 96 kHz does not fit 16.16
        ([UInt8](hex: "2B118800"), 2, 48000 << 16),               // HE-AAC: output rate
    ])
    func mp4aFields(asc: [UInt8], channels: UInt16, rate: UInt32) throws {
        let config = try AAC.AudioSpecificConfig(parsing: ByteBuffer(bytes: asc))
        let moov = try initSegment([Track(id: 1, timescale: 48000, media: .aac(config))])[1]
        let mp4a = try #require(moov["trak/mdia/minf/stbl/stsd/mp4a"])
        #expect(mp4a.u16(16) == channels)
        #expect(mp4a.u32(24) == rate)
    }

    /// Only the core rate is validated; an absurd SBR output rate must still not trap.
    @Test func absurdExtensionRateIsWrittenAsZero() throws {
        let config = AAC.AudioSpecificConfig(objectType: 2, samplingFrequency: 24000, channelConfiguration: 2,
                                             extensionObjectType: 5, extensionSamplingFrequency: -1)
        let moov = try initSegment([Track(id: 1, timescale: 24000, media: .aac(config))])[1]
        #expect(moov["trak/mdia/minf/stbl/stsd/mp4a"]?.u32(24) == 0)
    }

    @Test func appendsAfterExistingBytes() throws {
        var out = ByteBuffer(bytes: [1, 2, 3])
        try InitSegment.write(tracks: try ffmpegTracks(), to: &out)
        #expect(Array(bytes(out).prefix(3)) == [1, 2, 3])
        #expect(try parseBoxes(Array(bytes(out).dropFirst(3))).map(\.type) == ["ftyp", "moov"])
    }

    @Test func codecStrings() throws {
        let tracks = try ffmpegTracks()
        #expect(tracks.map(\.codecString) == ["avc1.64001e", "mp4a.40.2"])
    }
}

/// Walks esds > ES_Descriptor > DecoderConfigDescriptor > DecoderSpecificInfo and checks the fixed fields.
func decoderSpecificInfo(_ esds: TestBox) throws -> [UInt8] {
    #expect(esds.type == "esds" && esds.version == 0)
    let es = try #require(try parseDescriptors(esds.payload[4...]).first)
    #expect(es.tag == 3)
    #expect(es.body.prefix(3) == [0, 0, 0])                      // ES_ID 0, flags 0
    let inner = try parseDescriptors(es.body[3...])
    #expect(inner.map(\.tag) == [4, 6])
    #expect(inner.last?.body == [2])                              // SLConfig predefined 2
    let decoderConfig = inner[0].body
    #expect(decoderConfig[0] == 0x40 && decoderConfig[1] == 0x15)
    let specific = try parseDescriptors(decoderConfig[13...])
    #expect(specific.map(\.tag) == [5])
    return specific.first?.body ?? []
}
