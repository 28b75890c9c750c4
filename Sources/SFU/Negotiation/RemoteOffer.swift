import DTLS
import ICE
import SDP

public enum MediaKind: String, Sendable, Equatable { case audio, video }

public enum MediaDirection: String, Sendable, Equatable {
    case sendrecv, sendonly, recvonly, inactive

    public var sends: Bool { self == .sendrecv || self == .sendonly }
    public var receives: Bool { self == .sendrecv || self == .recvonly }
}

/// What a browser's (or encoder's) offer says, in the terms the SFU answers in (JSEP, RFC 8829; unified plan,
/// one transport by BUNDLE).
public struct RemoteOffer: Sendable {
    public struct Section: Sendable {
        public var mid: String
        public var kind: MediaKind
        public var direction: MediaDirection
        /// In the offer's order of preference, `rtx` folded into the codec it repairs.
        public var codecs: [RTPCodec]
        /// Header extension ids by URI (RFC 8285 `a=extmap`).
        public var extensions: [String: UInt8]
        /// The sender's SSRCs: the media one first, and its RTX one (`a=ssrc-group:FID`).
        public var ssrc: UInt32?
        public var rtxSSRC: UInt32?
        public var cname: String?
        /// `a=msid` stream and track ids.
        public var msid: (stream: String, track: String)?
        public var rtcpRsize: Bool
        /// The offer's m-line, for rejecting (port 0) what is not accepted.
        public var media: SessionDescription.MediaDescription
    }

    public var ufrag: String
    public var password: String
    public var fingerprint: Fingerprint
    public var sections: [Section]
    /// Every m-section's mid, in the offer's order, those the offerer rejected itself (port 0) included: an answer
    /// has one m-section per offered one, in the same order (RFC 8829 5.3.1).
    public var mids: [String]
    /// The offerer's own rejected m-sections (port 0 without `a=bundle-only`: a stopped transceiver), by mid.
    public var rejectedByOfferer: [String: SessionDescription.MediaDescription]
    public var extmapAllowMixed: Bool

    public init(parsing text: String) throws(NegotiationError) {
        let sdp: SessionDescription
        do { sdp = try SessionDescription(parsing: text) } catch { throw .malformedSDP(error.description) }
        try self.init(sdp)
    }

    public init(_ sdp: SessionDescription) throws(NegotiationError) {
        guard let first = sdp.media.first(where: { $0.kind == "audio" || $0.kind == "video" }) else { throw .noMedia }
        let transport = try TransportParameters(sdp, first: first)
        let bundle = sdp.session.compactMap { l -> [String]? in
            guard let a = l.attribute, a.name == "group", let v = a.value, v.hasPrefix("BUNDLE") else { return nil }
            return v.split(separator: " ").dropFirst().map(String.init)
        }.first ?? []
        var sections: [Section] = []
        var mids: [String] = []
        var rejected: [String: SessionDescription.MediaDescription] = [:]
        for (i, m) in sdp.media.enumerated() {
            guard let mid = m.attribute("mid") else { throw .missingMid(index: i) }
            guard !mids.contains(mid) else { throw .duplicateMid(mid) }
            mids.append(mid)
            // Port 0 is a section the offerer rejected itself, unless it is `a=bundle-only` (RFC 8843 6: Firefox
            // offers every section after the first that way). The answer rejects it too, in its place.
            guard m.port != 0 || m.hasAttribute("bundle-only") else {
                rejected[mid] = m
                continue
            }
            guard let kind = MediaKind(rawValue: m.kind) else { throw .unsupportedKind(mid: mid, kind: m.kind) }
            guard bundle.contains(mid) else { throw .notBundled(mid: mid) }
            guard m.hasAttribute("rtcp-mux") else { throw .noRTCPMux(mid: mid) }
            sections.append(Self.section(m, mid: mid, kind: kind))
        }
        guard !sections.isEmpty else { throw .noMedia }
        self.ufrag = transport.ufrag
        self.password = transport.password
        self.fingerprint = transport.fingerprint
        self.sections = sections
        self.mids = mids
        self.rejectedByOfferer = rejected
        self.extmapAllowMixed = sdp.hasAttribute("extmap-allow-mixed")
    }

    static func section(_ m: SessionDescription.MediaDescription, mid: String, kind: MediaKind) -> Section {
        var byPT: [UInt8: RTPCodec] = [:]
        for v in m.attributes("rtpmap") {
            let parts = v.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, let pt = UInt8(parts[0]), pt < 128 else { continue }
            let enc = parts[1].split(separator: "/")
            guard enc.count >= 2, let rate = Int(enc[1]) else { continue }
            byPT[pt] = RTPCodec(payloadType: pt, name: String(enc[0]), clockRate: rate, channels: enc.count > 2 ? Int(enc[2]) : nil)
        }
        for v in m.attributes("fmtp") {
            let parts = v.split(separator: " ", maxSplits: 1)
            if parts.count == 2, let pt = UInt8(parts[0]) { byPT[pt]?.parameters = String(parts[1]) }
        }
        for v in m.attributes("rtcp-fb") {
            let parts = v.split(separator: " ", maxSplits: 1)
            if parts.count == 2, let pt = UInt8(parts[0]) { byPT[pt]?.feedback.append(String(parts[1])) }
        }
        // rtx repairs the format its apt= names.
        for (pt, c) in byPT where c.name.lowercased() == "rtx" {
            if let apt = c.parameter("apt").flatMap(UInt8.init) { byPT[apt]?.rtxPayloadType = pt }
        }
        let codecs = m.formats.compactMap { UInt8($0).flatMap { byPT[$0] } }.filter { $0.name.lowercased() != "rtx" }
        var extensions: [String: UInt8] = [:]
        for v in m.attributes("extmap") {
            let parts = v.split(separator: " ")
            // `ID` or `ID/DIRECTION`; "/" alone has no id (it crashed here before: a remote crash by WHIP offer).
            guard parts.count >= 2, let id = UInt8(parts[0].split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)[0]) else { continue }
            extensions[String(parts[1])] = id
        }
        let direction = [MediaDirection.sendrecv, .sendonly, .recvonly, .inactive].first { m.hasAttribute($0.rawValue) } ?? .sendrecv
        var ssrc: UInt32?, rtx: UInt32?, cname: String?
        for v in m.attributes("ssrc-group") where v.hasPrefix("FID ") {
            let ids = v.split(separator: " ").dropFirst().compactMap { UInt32($0) }
            if ids.count == 2 { (ssrc, rtx) = (ids[0], ids[1]) }
        }
        for v in m.attributes("ssrc") {
            let parts = v.split(separator: " ", maxSplits: 1)
            guard let id = parts.first.flatMap({ UInt32($0) }) else { continue }
            if ssrc == nil { ssrc = id }
            if id == ssrc, parts.count == 2, parts[1].hasPrefix("cname:") { cname = String(parts[1].dropFirst(6)) }
        }
        let msid = m.attribute("msid").flatMap { v -> (String, String)? in
            let p = v.split(separator: " ")
            return p.count == 2 ? (String(p[0]), String(p[1])) : nil
        }
        return Section(mid: mid, kind: kind, direction: direction, codecs: codecs, extensions: extensions, ssrc: ssrc,
                       rtxSSRC: rtx, cname: cname, msid: msid, rtcpRsize: m.hasAttribute("rtcp-rsize"), media: m)
    }
}
