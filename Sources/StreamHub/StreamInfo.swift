import AMF0
import Codecs
import FLV
import NIOCore

/// What the API reports about a stream's media, read from its sequence headers and `onMetaData`.
public struct StreamInfo: Sendable, Codable, Equatable {
    public var videoCodec: String?
    /// RFC 6381 codec string where we can derive it ("avc1.64001f", "mp4a.40.2").
    public var videoCodecString: String?
    public var width: Int?
    public var height: Int?
    public var frameRate: Double?
    public var audioCodec: String?
    public var audioCodecString: String?
    public var sampleRate: Int?
    public var channels: Int?
    public var encoder: String?

    public init() {}

    /// Updates the video fields from a sequence header. Parse failures leave what `onMetaData` said.
    mutating func update(videoConfig frame: MediaFrame) {
        guard let h = try? VideoTagHeader(parsing: frame.payload) else { return }
        videoCodec = h.codec.name
        guard h.isH264 else { return }
        var body = frame.payload
        body.moveReaderIndex(forwardBy: min(h.headerSize, body.readableBytes))
        guard let record = try? H264.AVCDecoderConfigurationRecord(parsing: body) else { return }
        videoCodecString = record.codecString
        if let sps = record.sequenceParameterSets.first, let parsed = try? H264.SequenceParameterSet(parsing: sps) {
            width = parsed.width
            height = parsed.height
            if let fps = parsed.frameRate { frameRate = fps }
        }
    }

    mutating func update(audioConfig frame: MediaFrame) {
        guard let h = try? AudioTagHeader(parsing: frame.payload) else { return }
        audioCodec = h.format.name
        guard h.isAAC else { return }
        var body = frame.payload
        body.moveReaderIndex(forwardBy: min(h.headerSize, body.readableBytes))
        guard let asc = try? AAC.AudioSpecificConfig(parsing: body) else { return }
        audioCodecString = asc.codecString
        sampleRate = asc.extensionSamplingFrequency ?? asc.samplingFrequency
        channels = Int(asc.channelConfiguration)
    }

    /// The audio codec's name from a coded frame's header.
    mutating func update(audioFormat frame: MediaFrame) {
        guard let h = try? AudioTagHeader(parsing: frame.payload) else { return }
        audioCodec = h.format.name
    }

    /// Fills gaps from `onMetaData` (width, height, framerate, encoder); sequence headers win where both exist.
    mutating func update(metadata frame: MediaFrame) {
        guard let values = try? AMF0Value.parseAll(frame.payload), values.count >= 2,
              let props = values[1].objectValue else { return }
        if width == nil, let w = props["width"]?.numberValue, w > 0, w < 100_000 { width = Int(w) }
        if height == nil, let h = props["height"]?.numberValue, h > 0, h < 100_000 { height = Int(h) }
        if frameRate == nil, let f = props["framerate"]?.numberValue, f > 0, f < 1000 { frameRate = f }
        if let e = props["encoder"]?.stringValue { encoder = String(e.prefix(128)) }
    }
}
