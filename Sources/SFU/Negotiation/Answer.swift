import DTLS
import ICE
import SDP

/// What LiveSwarm forwards, and how it picks a codec from an offer.
public enum CodecPolicy {
    /// Publishing: Opus for audio; VP8, then H.264 with packetization-mode=1 (Constrained Baseline or Baseline
    /// first: what Chromium decodes, see docs/WEBRTC.md) for video.
    /// `only` ("VP8" or "H264") takes that video codec or none (a room's codec). `preferH264` puts H.264 first: a
    /// stream that becomes a hub stream (RTMP, HTTP-FLV, HLS viewers) needs it, and VP8 would need a transcoder.
    public static func publishCodec(for section: RemoteOffer.Section, only: String? = nil, preferH264: Bool = false) -> RTPCodec? {
        switch section.kind {
        case .audio:
            return section.codecs.first { $0.name.lowercased() == "opus" && $0.clockRate == 48000 }
        case .video:
            if preferH264, only == nil, let h264 = publishCodec(for: section, only: "H264") { return h264 }
            if only == nil || only?.uppercased() == "VP8", let vp8 = section.codecs.first(where: { $0.name.uppercased() == "VP8" }) { return vp8 }
            if let only, only.uppercased() != "H264" { return nil }
            let h264 = section.codecs.filter(\.isH264PacketizationMode1)
            return h264.first { $0.h264Profile?.idc == 0x42 && $0.h264Profile?.iop == 0xE0 }
                ?? h264.first { $0.h264Profile?.idc == 0x42 } ?? h264.first
        }
    }

    /// Playing: the viewer's payload type for the codec the producer sends (same name, clock rate and, for
    /// H.264, packetization mode and profile).
    public static func playCodec(matching producer: RTPCodec, in section: RemoteOffer.Section) -> RTPCodec? {
        section.codecs.first { c in
            guard c.name.lowercased() == producer.name.lowercased(), c.clockRate == producer.clockRate else { return false }
            guard producer.name.uppercased() == "H264" else { return true }
            return c.isH264PacketizationMode1 && c.h264Profile?.idc == producer.h264Profile?.idc
        }
    }

    public static func supported(_ kind: MediaKind) -> [String] {
        kind == .audio ? ["opus/48000/2"] : ["VP8/90000", "H264/90000 (packetization-mode=1)"]
    }

    /// Feedback LiveSwarm acts on (RFC 4585): NACK, PLI, FIR.
    public static let feedback: Set<String> = ["nack", "nack pli", "ccm fir"]
    /// The transport-wide sequence number extension LiveSwarm reads from publishers.
    public static let transportCCExtension = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
    /// RFC 6464: the sender's audio level in each audio packet (rooms find the active speaker from it).
    public static let audioLevelExtension = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
}

/// One accepted m-section of an answer.
public struct AnswerSection: Sendable {
    public var mid: String
    public var kind: MediaKind
    /// With the offerer's payload type.
    public var codec: RTPCodec
    /// Our direction.
    public var direction: MediaDirection
    /// Header extensions kept, with the offer's ids.
    public var extensions: [(uri: String, id: UInt8)]
    /// When we send: our SSRC (and RTX SSRC), CNAME and msid.
    public var sending: (ssrc: UInt32, rtxSSRC: UInt32?, cname: String, stream: String, track: String)?
    public var rtcpRsize: Bool
    /// The `a=rtcp-fb` types kept (those the codec was offered with).
    public var feedback: Set<String> = CodecPolicy.feedback

    public init(mid: String, kind: MediaKind, codec: RTPCodec, direction: MediaDirection,
                extensions: [(uri: String, id: UInt8)] = [], sending: (ssrc: UInt32, rtxSSRC: UInt32?, cname: String, stream: String, track: String)? = nil,
                rtcpRsize: Bool = true) {
        (self.mid, self.kind, self.codec, self.direction) = (mid, kind, codec, direction)
        (self.extensions, self.sending, self.rtcpRsize) = (extensions, sending, rtcpRsize)
    }
}

extension RemoteOffer {
    /// The ICE-lite answer (JSEP 5.3): accepted sections on the media port's candidates, everything else
    /// rejected with port 0 and left out of the BUNDLE group.
    public func answer(_ accepted: [AnswerSection], credentials: ICECredentials, fingerprint: Fingerprint,
                       candidates: [ICECandidate]) -> SessionDescription {
        let byMid = Dictionary(accepted.map { ($0.mid, $0) }, uniquingKeysWith: { a, _ in a })
        var session = AnswerLines.session(bundle: sections.map(\.mid).filter { byMid[$0] != nil }, extmapAllowMixed: extmapAllowMixed)
        session.append(.init("a", "msid-semantic: WMS *"))
        var media: [SessionDescription.MediaDescription] = []
        let byMidOffered = Dictionary(sections.map { ($0.mid, $0) }, uniquingKeysWith: { a, _ in a })
        for mid in mids {
            guard let s = byMidOffered[mid] else {
                // Rejected by the offerer: rejected in the answer, in its place.
                if let m = rejectedByOfferer[mid] { media.append(AnswerLines.rejected(m, mid: mid)) }
                continue
            }
            guard let a = byMid[s.mid] else {
                media.append(AnswerLines.rejected(s.media, mid: s.mid))
                continue
            }
            let c = a.codec
            var l = AnswerLines.transport(mid: a.mid, credentials: credentials, fingerprint: fingerprint)
            l.insert(.init("a", "rtcp:9 IN IP4 0.0.0.0"), at: 1)
            for e in a.extensions { l.append(.init("a", "extmap:\(e.id) \(e.uri)")) }
            l.append(.init("a", a.direction.rawValue))
            if let snd = a.sending { l.append(.init("a", "msid:\(snd.stream) \(snd.track)")) }
            l.append(.init("a", "rtcp-mux"))
            if a.rtcpRsize { l.append(.init("a", "rtcp-rsize")) }
            l.append(.init("a", "rtpmap:\(c.payloadType) \(c.rtpmap)"))
            for fb in c.feedback where a.feedback.contains(fb) { l.append(.init("a", "rtcp-fb:\(c.payloadType) \(fb)")) }
            if let p = c.parameters { l.append(.init("a", "fmtp:\(c.payloadType) \(p)")) }
            var formats = [String(c.payloadType)]
            let rtx = c.rtxPayloadType.flatMap { pt in c.feedback.contains("nack") ? pt : nil }
            if let rtx {
                formats.append(String(rtx))
                l.append(.init("a", "rtpmap:\(rtx) rtx/\(c.clockRate)"))
                l.append(.init("a", "fmtp:\(rtx) apt=\(c.payloadType)"))
            }
            if let snd = a.sending {
                if let r = snd.rtxSSRC, rtx != nil { l.append(.init("a", "ssrc-group:FID \(snd.ssrc) \(r)")) }
                for ssrc in [snd.ssrc] + (rtx != nil ? snd.rtxSSRC.map { [$0] } ?? [] : []) {
                    l.append(.init("a", "ssrc:\(ssrc) cname:\(snd.cname)"))
                    l.append(.init("a", "ssrc:\(ssrc) msid:\(snd.stream) \(snd.track)"))
                }
            }
            l += AnswerLines.candidates(candidates)
            media.append(.init(kind: s.kind.rawValue, port: 9, proto: s.media.proto, formats: formats, lines: l))
        }
        return SessionDescription(session: session, media: media)
    }
}
