/// One RTP payload format of an m-section (RFC 8866 6.6 `a=rtpmap`, `a=fmtp`; RFC 4585 `a=rtcp-fb`), with its
/// retransmission format (RFC 4588 `rtx` with `apt=`) folded in.
public struct RTPCodec: Sendable, Equatable {
    public var payloadType: UInt8
    /// As written in `a=rtpmap` ("opus", "VP8", "H264").
    public var name: String
    public var clockRate: Int
    public var channels: Int?
    /// The `a=fmtp` value, as offered.
    public var parameters: String?
    /// `a=rtcp-fb` values for this payload type ("nack", "nack pli", "ccm fir", "transport-cc").
    public var feedback: [String]
    /// The payload type of its `rtx` format, when offered.
    public var rtxPayloadType: UInt8?

    public init(payloadType: UInt8, name: String, clockRate: Int, channels: Int? = nil, parameters: String? = nil,
                feedback: [String] = [], rtxPayloadType: UInt8? = nil) {
        (self.payloadType, self.name, self.clockRate, self.channels) = (payloadType, name, clockRate, channels)
        (self.parameters, self.feedback, self.rtxPayloadType) = (parameters, feedback, rtxPayloadType)
    }

    /// `opus/48000/2`, `VP8/90000`.
    public var rtpmap: String { "\(name)/\(clockRate)" + (channels.map { "/\($0)" } ?? "") }

    /// One `key=value` of the fmtp line (keys compared case-insensitively).
    public func parameter(_ key: String) -> String? {
        guard let parameters else { return nil }
        for pair in parameters.split(separator: ";") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            if kv.count == 2, kv[0].trimmingWhitespace().lowercased() == key.lowercased() { return String(kv[1].trimmingWhitespace()) }
        }
        return nil
    }

    /// H.264 profile_idc and profile-iop from `profile-level-id` (RFC 6184 8.1): "42e01f" is (0x42, 0xe0).
    public var h264Profile: (idc: UInt8, iop: UInt8)? {
        guard let id = parameter("profile-level-id"), id.count == 6, let v = UInt32(id, radix: 16) else { return nil }
        return (UInt8(v >> 16), UInt8(v >> 8 & 0xFF))
    }

    public var isH264PacketizationMode1: Bool { name.uppercased() == "H264" && parameter("packetization-mode") == "1" }
}

extension Substring {
    func trimmingWhitespace() -> Substring {
        var s = self
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return s
    }
}
