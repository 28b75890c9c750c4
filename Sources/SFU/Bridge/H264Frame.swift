import Codecs
import FLV
import NIOCore
import RTP
import StreamHub

/// What the RTMP-to-WebRTC bridge makes of one hub video frame (an FLV video tag body).
enum H264Frame {
    /// A decoder configuration (avcC): NAL length size and the SPS and PPS to send before every IDR.
    struct Configuration: Equatable {
        var nalLengthSize: Int
        var parameterSets: [[UInt8]]
    }

    enum Parsed {
        case configuration(Configuration)
        /// A coded access unit: its composition time offset (ms, signed) and body (AVCC NAL units).
        case picture(compositionTime: Int32, body: ByteBuffer)
        /// End of sequence, metadata or a command frame: nothing to send.
        case ignored
    }

    enum Failure: Error, Equatable, CustomStringConvertible {
        case notH264(String)
        case badHeader(String)
        case badConfiguration(String)
        case badNALUnits(String)
        /// Not failures of the stream, but what a viewer misses because of its B-frames.
        case nonReferenceDropped
        case reordered

        var description: String {
            switch self {
            case .notH264(let codec): "video codec \(codec) is not H.264: WebRTC viewers of RTMP streams get H.264 only"
            case .badHeader(let why): "unreadable video tag header: \(why)"
            case .badConfiguration(let why): "unusable AVC sequence header (\(why)): video waits for a usable one"
            case .badNALUnits(let why): "frame with broken NAL units (\(why)): dropped, video resumes at the next keyframe"
            case .nonReferenceDropped:
                "the stream has B-frames, which Chromium's WebRTC decoder cannot reorder: non-reference B-frames are left out, "
                    + "so WebRTC viewers get fewer frames per second (publish without B-frames for all of them: x264 -bf 0 or -tune zerolatency)"
            case .reordered:
                "the stream has B-frames used as references (x264's b-pyramid), which Chromium's WebRTC decoder cannot reorder: "
                    + "WebRTC viewers get keyframes only (publish without B-frames: x264 -bf 0 or -tune zerolatency; OBS: B-frames 0)"
            }
        }
    }

    static func parse(_ frame: MediaFrame) throws(Failure) -> Parsed {
        let header: VideoTagHeader
        do { header = try VideoTagHeader(parsing: frame.payload) } catch { throw .badHeader("\(error)") }
        guard header.isH264 else {
            if header.packetType == .other(0xFF) || header.packetType == .metadata { return .ignored }
            throw .notH264(header.codec.name)
        }
        let body = frame.payload.getSlice(at: frame.payload.readerIndex + min(header.headerSize, frame.payload.readableBytes),
                                          length: max(0, frame.payload.readableBytes - header.headerSize)) ?? ByteBuffer()
        switch header.packetType {
        case .sequenceStart:
            let record: H264.AVCDecoderConfigurationRecord
            do { record = try H264.AVCDecoderConfigurationRecord(parsing: body) } catch { throw .badConfiguration("\(error)") }
            let sets = (record.sequenceParameterSets + record.pictureParameterSets).filter { !$0.isEmpty }
            guard !record.sequenceParameterSets.allSatisfy(\.isEmpty), !record.pictureParameterSets.allSatisfy(\.isEmpty) else {
                throw .badConfiguration("empty SPS or PPS")
            }
            return .configuration(Configuration(nalLengthSize: record.nalLengthSize, parameterSets: sets))
        case .codedFrames:
            return .picture(compositionTime: header.compositionTime, body: body)
        default:
            return .ignored
        }
    }

    /// The RTP payloads of a picture (without parameter sets), made once per frame and shared by every WebRTC
    /// viewer: 2-byte big-endian length, then the payload, for each packet. NAL units that do not parse leave the
    /// encoding empty; only then are they parsed again, to name the fault (an empty picture is not one).
    static func payloads(_ frame: MediaFrame, body: ByteBuffer, nalLengthSize: Int, maxPayload: Int) throws(Failure) -> ByteBuffer {
        let encoded = frame.encodings.encoding(.init(format: 3, a: UInt32(maxPayload), b: UInt32(nalLengthSize))) {
            guard let units = try? H264.nalUnits(avcc: body, nalLengthSize: nalLengthSize) else { return ByteBuffer() }
            let payloads = H264RTP.packetize(units.map { $0.readableBytesView }, maxPayload: maxPayload)
            var out = ByteBuffer()
            out.reserveCapacity(payloads.reduce(0) { $0 + 2 + $1.count })
            for p in payloads {
                out.writeInteger(UInt16(p.count))
                out.writeBytes(p)
            }
            return out
        }
        if encoded.readableBytes == 0 {
            do { _ = try H264.nalUnits(avcc: body, nalLengthSize: nalLengthSize) } catch { throw .badNALUnits("\(error)") }
        }
        return encoded
    }

    /// Whether no slice of an access unit is a reference (`nal_ref_idc` 0 on every slice, RFC 6184 5.3: NRI): no other
    /// picture needs it, so leaving it out corrupts nothing. FU-A indicators carry the NRI of their NAL unit.
    static func isNonReference(_ payloads: ByteBuffer) -> Bool {
        var slices = 0, referenced = false
        forEach(payloads) { p in
            guard let first = p.first else { return }
            let type = first & 0x1F == H264RTP.fuA ? (p.dropFirst().first ?? 0) & 0x1F : first & 0x1F
            guard type == 1 || type == 5 else { return }
            slices += 1
            if first & 0x60 != 0 { referenced = true }
        }
        return slices > 0 && !referenced
    }

    /// Whether an access unit carries its own SPS and PPS (some encoders repeat them before every IDR).
    static func hasParameterSets(_ payloads: ByteBuffer) -> Bool {
        var sps = false, pps = false
        forEach(payloads) { p in
            switch p.first.map({ $0 & 0x1F }) {
            case 7: sps = true
            case 8: pps = true
            default: break
            }
        }
        return sps && pps
    }

    static func forEach(_ payloads: ByteBuffer, _ body: (ByteBufferView) -> Void) {
        var b = payloads
        while let n = b.readInteger(as: UInt16.self), let p = b.readSlice(length: Int(n)) { body(p.readableBytesView) }
    }
}
