import Codecs
import NIOCore

/// Muxes H.264 + AAC into 188-byte MPEG-TS packets for HLS segments, ISO/IEC 13818-1
/// (2.4.3 transport packets, 2.4.4 PAT/PMT, 2.4.3.7 PES), with video in ITU-T H.264 Annex B
/// byte-stream form and audio in ADTS (ISO/IEC 14496-3 1.A.2).
///
/// Layout: program 1, PMT on PID 0x1000, video on 0x100 (stream type 0x1B), audio on 0x101
/// (stream type 0x0F); the PCR rides on the video PID, or on the audio PID without video.
///
/// PCR choice: PCR = DTS of the PES it is attached to (offset 0). HLS clients pace playback by
/// PTS, not PCR, and a fixed negative offset would make the first PCR of a stream whose DTS
/// starts at 0 wrap to 2^33, which some players treat as a discontinuity.
public struct TSMuxer: Sendable {
    static let pmtPID: UInt16 = 0x1000
    static let videoPID: UInt16 = 0x100
    static let audioPID: UInt16 = 0x101
    static let programNumber: UInt16 = 1
    static let h264StreamType: UInt8 = 0x1B
    static let aacADTSStreamType: UInt8 = 0x0F
    /// Subtracted from DTS to form the PCR; see the type comment for why it is 0.
    static let pcrOffset: Int64 = 0
    static let startCode: [UInt8] = [0, 0, 0, 1]
    /// AUD with primary_pic_type 7 (any slice type) and the RBSP stop bit.
    static let accessUnitDelimiter: [UInt8] = [0, 0, 0, 1, 0x09, 0xF0]

    private let tables: ProgramSpecificInformation
    private let nalLengthSize: Int?
    /// SPS and PPS of the config in Annex B form, ready to put before IDR access units.
    private let parameterSets: [UInt8]
    private let adts: ADTSWriter?
    private var pat = TSPacketWriter(pid: 0)
    private var pmt = TSPacketWriter(pid: TSMuxer.pmtPID)
    private var video = TSPacketWriter(pid: TSMuxer.videoPID)
    private var audio = TSPacketWriter(pid: TSMuxer.audioPID)

    /// Creates a muxer for the given streams; at least one configuration is required.
    public init(videoConfig: H264.AVCDecoderConfigurationRecord?, audioConfig: AAC.AudioSpecificConfig?) throws(TSError) {
        guard videoConfig != nil || audioConfig != nil else {
            throw .invalidConfiguration("neither a video nor an audio configuration")
        }
        var streams: [ProgramSpecificInformation.ElementaryStream] = []
        var parameterSets: [UInt8] = []
        if let videoConfig {
            guard [1, 2, 4].contains(videoConfig.nalLengthSize) else {
                throw .invalidConfiguration("nalLengthSize \(videoConfig.nalLengthSize)")
            }
            // Without parameter sets an HLS segment starting at an IDR could never be decoded.
            guard videoConfig.sequenceParameterSets.contains(where: { !$0.isEmpty }),
                videoConfig.pictureParameterSets.contains(where: { !$0.isEmpty })
            else {
                throw .invalidConfiguration("AVC configuration without SPS or PPS")
            }
            for nal in videoConfig.sequenceParameterSets + videoConfig.pictureParameterSets where !nal.isEmpty {
                parameterSets += Self.startCode
                parameterSets += nal
            }
            streams.append(.init(streamType: Self.h264StreamType, pid: Self.videoPID))
        }
        if let audioConfig {
            self.adts = try ADTSWriter(config: audioConfig)
            streams.append(.init(streamType: Self.aacADTSStreamType, pid: Self.audioPID))
        } else {
            self.adts = nil
        }
        self.nalLengthSize = videoConfig?.nalLengthSize
        self.parameterSets = parameterSets
        self.tables = ProgramSpecificInformation(
            programNumber: Self.programNumber,
            pmtPID: Self.pmtPID,
            pcrPID: videoConfig != nil ? Self.videoPID : Self.audioPID,
            streams: streams
        )
    }

    /// PAT + PMT; call at the start of every segment.
    public mutating func writeTables(to out: inout ByteBuffer) {
        pat.write(payload: tables.patPayload(), fillWithFF: true, to: &out)
        pmt.write(payload: tables.pmtPayload(), fillWithFF: true, to: &out)
    }

    /// Writes one sample as one PES packet; on error nothing is appended to `out`.
    public mutating func write(_ sample: TSSample, to out: inout ByteBuffer) throws(TSError) {
        switch sample.kind {
        case .video: try writeVideo(sample, to: &out)
        case .audio: try writeAudio(sample, to: &out)
        }
    }

    private mutating func writeVideo(_ sample: TSSample, to out: inout ByteBuffer) throws(TSError) {
        guard let nalLengthSize else { throw .invalidFrame("video sample but no video stream configured") }
        guard sample.pts >= sample.dts else { throw .invalidFrame("PTS \(sample.pts) before DTS \(sample.dts)") }
        let units: [ByteBuffer]
        do {
            units = try H264.nalUnits(avcc: sample.data, nalLengthSize: nalLengthSize)
        } catch {
            throw .invalidFrame("AVCC access unit: \(error)")
        }
        var hasIDR = false, hasSPS = false, hasPPS = false, hasSlice = false
        for unit in units {
            guard let header = unit.getInteger(at: unit.readerIndex, as: UInt8.self) else { continue }
            switch H264.NALUnitType(header: header) {
            case .idr: hasIDR = true; hasSlice = true
            case .nonIDR, .partitionA: hasSlice = true
            case .sps: hasSPS = true
            case .pps: hasPPS = true
            default: break
            }
        }
        guard hasSlice else { throw .invalidFrame("access unit without a slice") }

        let header = PESHeader(
            streamID: PESHeader.videoStreamID,
            pts: sample.pts,
            dts: sample.pts == sample.dts ? nil : sample.dts,
            packetLength: 0,  // unbounded: access units regularly exceed 65535 bytes
            dataAlignment: true
        )
        var pes = ByteBuffer()
        pes.reserveCapacity(9 + header.tailLength + Self.accessUnitDelimiter.count + parameterSets.count + sample.data.readableBytes + units.count * 4)
        header.write(to: &pes)
        pes.writeBytes(Self.accessUnitDelimiter)
        // Keyframes that are not IDR (recovery points) get them too, since a segment may start there.
        if (hasIDR || sample.isKeyframe) && !(hasSPS && hasPPS) {
            pes.writeBytes(parameterSets)
        }
        for unit in units {
            // The AUD must be the first NAL of the access unit (H.264 7.4.1.2.3); ours already is.
            if unit.getInteger(at: unit.readerIndex, as: UInt8.self).flatMap(H264.NALUnitType.init(header:)) == .aud { continue }
            pes.writeBytes(Self.startCode)
            pes.writeImmutableBuffer(unit)
        }
        video.write(
            payload: pes,
            randomAccess: sample.isKeyframe,
            pcr: sample.dts &- Self.pcrOffset,  // wrapping is correct: PCR is taken modulo 2^33
            to: &out
        )
    }

    private mutating func writeAudio(_ sample: TSSample, to out: inout ByteBuffer) throws(TSError) {
        guard let adts else { throw .invalidFrame("audio sample but no audio stream configured") }
        var frame = ByteBuffer()
        try adts.write(frame: sample.data, to: &frame)
        let header = PESHeader(
            streamID: PESHeader.audioStreamID,
            pts: sample.pts,
            dts: nil,
            // Cannot overflow: an ADTS frame is at most 8191 bytes.
            packetLength: UInt16(PESHeader.fixedTail + 5 + frame.readableBytes),
            dataAlignment: true
        )
        var pes = ByteBuffer()
        pes.reserveCapacity(9 + header.tailLength + frame.readableBytes)
        header.write(to: &pes)
        pes.writeBuffer(&frame)
        audio.write(
            payload: pes,
            randomAccess: false,
            pcr: nalLengthSize == nil ? sample.pts &- Self.pcrOffset : nil,
            to: &out
        )
    }
}
