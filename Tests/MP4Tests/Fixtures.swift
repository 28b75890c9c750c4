import Codecs
import NIOCore
import TestSupport

/// What `ffmpeg -f lavfi -i testsrc2=size=640x360:rate=30 -c:v libx264 -f flv` puts in its AVC sequence
/// header: High profile, level 3.0, one SPS and one PPS, and the High-profile trailer.
let ffmpegAVCRecordBytes = [UInt8](hex: """
    0164001effe1001a6764001eacd940a02ff970110000030001000003003c0f162d9601000668ebe3cb22c0fdf8f800
    """)
/// The matching AAC sequence header from `-f lavfi -i sine=sample_rate=44100 -c:a aac`: LC, 44100 Hz,
/// mono, followed by ffmpeg's sbrPresentFlag=0 sync extension.
let ffmpegASCBytes = [UInt8](hex: "120856e500")

func ffmpegAVCRecord() throws -> H264.AVCDecoderConfigurationRecord {
    try H264.AVCDecoderConfigurationRecord(parsing: ByteBuffer(bytes: ffmpegAVCRecordBytes))
}

func ffmpegASC() throws -> AAC.AudioSpecificConfig {
    try AAC.AudioSpecificConfig(parsing: ByteBuffer(bytes: ffmpegASCBytes))
}

func bytes(_ buffer: ByteBuffer) -> [UInt8] { Array(buffer.readableBytesView) }
