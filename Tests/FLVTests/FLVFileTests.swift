import Codecs
import NIOCore
import Testing
@testable import FLV

/// Walks ffmpeg's small.flv: 42 tags = 1 script + 17 video + 24 audio, last timestamp 467 ms
/// (counted with extract.py, Tests/CodecsTests/Fixtures/README.md).
@Suite struct FLVFileTests {
    static let expectedCounts: [TagType: Int] = [.script: 1, .video: 17, .audio: 24]

    static func parseAll(_ bytes: [UInt8]) throws -> (FLVHeader, [FLVTag]) {
        var buffer = ByteBuffer(bytes: bytes)
        let header = try FLVHeader(parsing: &buffer)
        var tags: [FLVTag] = []
        while let tag = try FLVTag.parse(from: &buffer) {
            tags.append(tag)
        }
        #expect(buffer.readableBytes == 0)
        return (header, tags)
    }

    @Test func walksWholeFileInOnePiece() throws {
        let bytes = try Fixture.bytes("small.flv")
        let (header, tags) = try Self.parseAll(bytes)
        #expect(header == FLVHeader(hasAudio: true, hasVideo: true))
        #expect(tags.count == 42)
        #expect(Dictionary(grouping: tags, by: \.type).mapValues(\.count) == Self.expectedCounts)
        #expect(tags.first?.type == .script)
        #expect(tags.first?.body.readableBytes == 293)
        #expect(tags.last?.timestamp == 467)
        // Timestamps rise monotonically except for ffmpeg's trailing AVC end-of-sequence tag,
        // which carries the last *video* timestamp (467) after audio reached 555.
        let media = tags.dropLast().map(\.timestamp)
        #expect(media == media.sorted())
        #expect(media.max() == 555)
    }

    /// Feeding one byte at a time exercises the nil (need more data) path at every offset.
    @Test func walksWholeFileByteByByte() throws {
        let bytes = try Fixture.bytes("small.flv")
        let (_, reference) = try Self.parseAll(bytes)

        var buffer = ByteBuffer()
        var header: FLVHeader?
        var tags: [FLVTag] = []
        var nilReturns = 0
        for byte in bytes {
            buffer.writeInteger(byte)
            if header == nil {
                let before = buffer.readerIndex
                do {
                    header = try FLVHeader(parsing: &buffer)
                } catch .truncated {
                    #expect(buffer.readerIndex == before)
                    continue
                }
            }
            while true {
                let before = buffer.readerIndex
                guard let tag = try FLVTag.parse(from: &buffer) else {
                    #expect(buffer.readerIndex == before)
                    nilReturns += 1
                    break
                }
                tags.append(tag)
            }
        }
        #expect(header == FLVHeader(hasAudio: true, hasVideo: true))
        #expect(tags == reference)
        #expect(buffer.readableBytes == 0)
        #expect(nilReturns == bytes.count - 12)   // one per byte once the 13-byte header is in
    }

    /// Header + tags written back reproduce ffmpeg's file byte for byte.
    @Test func rewritesFileByteForByte() throws {
        let bytes = try Fixture.bytes("small.flv")
        let (header, tags) = try Self.parseAll(bytes)
        var out = ByteBuffer()
        header.write(to: &out)
        for (index, tag) in tags.enumerated() {
            if index.isMultiple(of: 2) {
                tag.write(to: &out)
            } else {
                FLVTag.write(type: tag.type, timestamp: tag.timestamp, body: tag.body, to: &out)
            }
        }
        #expect(Array(out.readableBytesView) == bytes)
    }

    /// Tag headers of every media tag, checked against what ffmpeg wrote.
    @Test func mediaTagHeaders() throws {
        let (_, tags) = try Self.parseAll(Fixture.bytes("small.flv"))
        let video = try tags.filter { $0.type == .video }.map { try VideoTagHeader(parsing: $0.body) }
        #expect(video.allSatisfy { $0.isH264 && $0.codec == .avc && $0.headerSize == 5 })
        #expect(video.first?.packetType == .sequenceStart)
        #expect(video.first?.frameType == .key)
        #expect(video.last?.packetType == .sequenceEnd)   // ffmpeg's end-of-sequence tag 17 02 00 00 00
        let frames = video.filter { $0.packetType == .codedFrames }
        #expect(frames.count == 15)
        #expect(frames.filter { $0.frameType == .key }.count == 1)
        #expect(frames.map(\.compositionTime) == [67, 166, 67, 0, 33, 167, 67, 0, 33, 134, 33, 33, 134, 33, 33])

        let audio = try tags.filter { $0.type == .audio }.map { try AudioTagHeader(parsing: $0.body) }
        #expect(audio.allSatisfy { $0.isAAC && $0.headerSize == 2 })
        // ffmpeg writes 0xAF (44 kHz, 16-bit, stereo) although the stream is mono.
        #expect(audio.allSatisfy { $0.soundRate == 3 && $0.soundSize == 1 && $0.channels == 1 })
        #expect(audio.first?.packetType == .sequenceStart)
        #expect(audio.dropFirst().allSatisfy { $0.packetType == .codedFrames })
    }

    /// The sequence headers feed the Codecs parsers: 160x90 @ 30 fps, AAC LC 44.1 kHz mono (ffprobe).
    @Test func sequenceHeadersDecode() throws {
        let (_, tags) = try Self.parseAll(Fixture.bytes("small.flv"))
        let videoTag = try #require(tags.first { $0.type == .video })
        let videoHeader = try VideoTagHeader(parsing: videoTag.body)
        let avcC = try #require(videoTag.body.getSlice(at: videoTag.body.readerIndex + videoHeader.headerSize, length: videoTag.body.readableBytes - videoHeader.headerSize))
        let record = try H264.AVCDecoderConfigurationRecord(parsing: avcC)
        let sps = try H264.SequenceParameterSet(parsing: record.sequenceParameterSets[0])
        #expect(sps.width == 160 && sps.height == 90 && sps.frameRate == 30)

        let audioTag = try #require(tags.first { $0.type == .audio })
        let audioHeader = try AudioTagHeader(parsing: audioTag.body)
        let ascBytes = try #require(audioTag.body.getSlice(at: audioTag.body.readerIndex + audioHeader.headerSize, length: audioTag.body.readableBytes - audioHeader.headerSize))
        let asc = try AAC.AudioSpecificConfig(parsing: ascBytes)
        #expect(asc.samplingFrequency == 44100 && asc.channelConfiguration == 1 && asc.objectType == 2)

        // First keyframe access unit: SEI + IDR.
        let keyTag = try #require(tags.first { $0.type == .video && (try? VideoTagHeader(parsing: $0.body).packetType) == .codedFrames })
        let au = try #require(keyTag.body.getSlice(at: keyTag.body.readerIndex + 5, length: keyTag.body.readableBytes - 5))
        let types = try H264.nalUnits(avcc: au, nalLengthSize: record.nalLengthSize).compactMap {
            $0.getInteger(at: $0.readerIndex, as: UInt8.self).flatMap(H264.NALUnitType.init(header:))
        }
        #expect(types == [.sei, .idr])
    }
}
