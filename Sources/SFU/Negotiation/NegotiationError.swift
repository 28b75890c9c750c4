/// Why LiveSwarm cannot answer an offer, precisely enough for the person who sent it to fix it.
public enum NegotiationError: Error, Equatable, Sendable, CustomStringConvertible {
    case malformedSDP(String)
    case noMedia
    case missingICECredentials
    case invalidICECredentials
    case missingFingerprint
    /// `a=setup:passive` in an offer: LiveSwarm is always the DTLS server.
    case passiveSetup
    case missingMid(index: Int)
    /// Two m-sections with the same `a=mid` (RFC 8843 says mids are unique in a description).
    case duplicateMid(String)
    /// Every m-section must be in one BUNDLE group: the media port is one port (RFC 8843).
    case notBundled(mid: String)
    /// RTP and RTCP must share the port (RFC 5761 `a=rtcp-mux`).
    case noRTCPMux(mid: String)
    case unsupportedKind(mid: String, kind: String)
    case noCommonCodec(mid: String, kind: String, offered: [String], supported: [String])
    /// WHIP offers must send (sendonly/sendrecv), WHEP offers must receive (recvonly/sendrecv).
    case wrongDirection(mid: String, expected: String, got: String)
    /// A publisher's video m-section without `a=ssrc` lines: its packets could not be told apart.
    case missingSSRC(mid: String)
    /// The network check's offer has no DataChannel m-section.
    case noDataChannel

    public var description: String {
        switch self {
        case .malformedSDP(let why): "the offer is not valid SDP: \(why)"
        case .noMedia: "the offer has no audio or video m-section"
        case .missingICECredentials: "no a=ice-ufrag / a=ice-pwd"
        case .invalidICECredentials: "a=ice-ufrag or a=ice-pwd is not well formed (RFC 8839 5.4)"
        case .missingFingerprint: "no a=fingerprint:sha-256 (RFC 8122) to check the peer's DTLS certificate against"
        case .passiveSetup: "a=setup:passive in an offer is not supported: LiveSwarm is the DTLS server (offer actpass)"
        case .missingMid(let i): "m-section \(i) has no a=mid"
        case .duplicateMid(let mid): "two m-sections have a=mid:\(mid); mids must be unique (RFC 8843)"
        case .notBundled(let mid): "m-section \(mid) is not in the a=group:BUNDLE group; LiveSwarm needs max-bundle"
        case .noRTCPMux(let mid): "m-section \(mid) has no a=rtcp-mux"
        case .unsupportedKind(let mid, let kind): "m-section \(mid) is \(kind); only audio and video are supported"
        case .noCommonCodec(let mid, let kind, let offered, let supported):
            "no common \(kind) codec in m-section \(mid): offered \(offered.joined(separator: ", ")); LiveSwarm takes \(supported.joined(separator: ", "))"
        case .wrongDirection(let mid, let expected, let got): "m-section \(mid) is \(got); expected \(expected)"
        case .missingSSRC(let mid): "m-section \(mid) sends without a=ssrc lines"
        case .noDataChannel: "no DataChannel m-section (m=application ... UDP/DTLS/SCTP webrtc-datachannel)"
        }
    }
}
