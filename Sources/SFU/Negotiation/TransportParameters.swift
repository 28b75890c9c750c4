import DTLS
import ICE
import SDP

/// The transport half of an offer, the same for media and DataChannel sessions: the peer's ICE credentials and
/// DTLS fingerprint (from its first m-section, else the session level), and its consent to LiveSwarm being the
/// DTLS server (`a=setup:actpass` or `active`).
public struct TransportParameters: Sendable {
    public var ufrag: String
    public var password: String
    public var fingerprint: Fingerprint

    public init(_ sdp: SessionDescription, first: SessionDescription.MediaDescription? = nil) throws(NegotiationError) {
        let first = first ?? sdp.media.first
        guard let ufrag = first?.attribute("ice-ufrag") ?? sdp.attribute("ice-ufrag"),
              let password = first?.attribute("ice-pwd") ?? sdp.attribute("ice-pwd") else { throw .missingICECredentials }
        guard ICECredentials.isValid(ufrag: ufrag), ICECredentials.isValid(password: password) else { throw .invalidICECredentials }
        let values = (first?.attributes("fingerprint") ?? []) + (sdp.attribute("fingerprint").map { [$0] } ?? [])
        guard let fingerprint = values.lazy.compactMap(Fingerprint.init(sdp:)).first else { throw .missingFingerprint }
        if (first?.attribute("setup") ?? sdp.attribute("setup")) == "passive" { throw .passiveSetup }
        (self.ufrag, self.password, self.fingerprint) = (ufrag, password, fingerprint)
    }
}

/// Lines every ICE-lite answer from the media port shares.
enum AnswerLines {
    static func session(bundle: [String], extmapAllowMixed: Bool) -> [SessionDescription.Line] {
        var lines: [SessionDescription.Line] = [
            .init("v", "0"),
            .init("o", "- \(UInt64.random(in: 1...(1 << 62))) 2 IN IP4 127.0.0.1"),
            .init("s", "-"),
            .init("t", "0 0"),
            .init("a", "group:BUNDLE " + bundle.joined(separator: " ")),
            .init("a", "ice-lite"),
        ]
        if extmapAllowMixed { lines.append(.init("a", "extmap-allow-mixed")) }
        return lines
    }

    /// ICE and DTLS for an accepted m-section: our credentials, our fingerprint, DTLS server.
    static func transport(mid: String, credentials: ICECredentials, fingerprint: Fingerprint) -> [SessionDescription.Line] {
        [.init("c", "IN IP4 0.0.0.0"), .init("a", "mid:\(mid)"), .init("a", "ice-ufrag:\(credentials.ufrag)"),
         .init("a", "ice-pwd:\(credentials.password)"), .init("a", "fingerprint:\(fingerprint.sdpValue)"), .init("a", "setup:passive")]
    }

    /// All our candidates at once: an ICE-lite agent has nothing to trickle.
    static func candidates(_ candidates: [ICECandidate]) -> [SessionDescription.Line] {
        candidates.map { .init("a", "candidate:\($0)") } + [.init("a", "end-of-candidates")]
    }

    /// An m-section we do not take (JSEP 5.3.1: port 0, and out of the BUNDLE group).
    static func rejected(_ m: SessionDescription.MediaDescription, mid: String) -> SessionDescription.MediaDescription {
        .init(kind: m.kind, port: 0, proto: m.proto, formats: m.formats,
              lines: [.init("c", "IN IP4 0.0.0.0"), .init("a", "mid:\(mid)"), .init("a", "inactive")])
    }
}

extension TransportParameters {
    /// The answer to an offer with a DataChannel m-section (the media port's reachability probe): that section
    /// accepted on our candidates, every other one rejected. SCTP itself is not served yet.
    public static func dataChannelAnswer(offer: SessionDescription, credentials: ICECredentials, fingerprint: Fingerprint,
                                         candidates: [ICECandidate]) throws(NegotiationError) -> SessionDescription {
        guard let accepted = offer.media.firstIndex(where: { $0.kind == "application" && $0.proto.hasSuffix("DTLS/SCTP") }) else {
            throw .noDataChannel
        }
        let mids = offer.media.enumerated().map { $1.attribute("mid") ?? String($0) }
        var media: [SessionDescription.MediaDescription] = []
        for (i, m) in offer.media.enumerated() {
            guard i == accepted else {
                media.append(AnswerLines.rejected(m, mid: mids[i]))
                continue
            }
            let lines = AnswerLines.transport(mid: mids[i], credentials: credentials, fingerprint: fingerprint)
                + [.init("a", "sctp-port:5000"), .init("a", "max-message-size:262144")] + AnswerLines.candidates(candidates)
            media.append(.init(kind: m.kind, port: 9, proto: m.proto, formats: m.formats, lines: lines))
        }
        return SessionDescription(session: AnswerLines.session(bundle: [mids[accepted]], extmapAllowMixed: offer.hasAttribute("extmap-allow-mixed")),
                                  media: media)
    }
}
