import DTLS
import Foundation
import ICE
import SDP
import SFU
import Testing
import TestSupport

/// Offers captured from Chromium 156 (`Tests/SFUTests/Fixtures`, see its README) and what LiveSwarm answers.
@Suite struct NegotiationTests {
    static func fixture(_ name: String) throws -> String {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: "sdp"))
        return try String(contentsOf: url, encoding: .utf8)
    }

    static let credentials = ICECredentials(ufrag: "srvU", password: "serverpassword0123456789")
    static let fingerprint = Fingerprint(bytes: [UInt8](repeating: 0xAB, count: 32))!
    static let candidates = [ICECandidate(foundation: "1", transport: .udp, priority: ICECandidate.priority(.udp, index: 0),
                                          host: "127.0.0.1", port: 8000)]

    @Test func readsChromiumsPublishOffer() throws {
        let offer = try RemoteOffer(parsing: Self.fixture("chromium-156-publish-offer"))
        #expect(offer.ufrag == "AOe9" && offer.sections.map(\.mid) == ["0", "1"])
        let audio = offer.sections[0], video = offer.sections[1]
        #expect(audio.kind == .audio && audio.direction == .sendonly && audio.ssrc == 1_708_063_907)
        #expect(audio.codecs.first?.rtpmap == "opus/48000/2" && audio.codecs.first?.payloadType == 111)
        #expect(video.ssrc == 4_035_889_978 && video.rtxSSRC == 1_321_450_000 && video.cname == "ohKJmYr4mALaZqVd")
        #expect(video.msid?.track == "47f4d74f-718e-49ed-8d16-bbdfaf55e4ff")
        #expect(video.extensions["urn:ietf:params:rtp-hdrext:sdes:mid"] == 4)
        let vp8 = try #require(CodecPolicy.publishCodec(for: video))
        #expect(vp8.name == "VP8" && vp8.payloadType == 96 && vp8.rtxPayloadType == 97)
        #expect(vp8.feedback.contains("nack pli") && vp8.feedback.contains("transport-cc"))
        #expect(CodecPolicy.publishCodec(for: audio)?.payloadType == 111)
        // Without VP8, H.264 Constrained Baseline with packetization-mode=1.
        var h264Only = video
        h264Only.codecs.removeAll { $0.name == "VP8" }
        let h264 = try #require(CodecPolicy.publishCodec(for: h264Only))
        #expect(h264.isH264PacketizationMode1 && h264.parameter("profile-level-id") == "42e01f")
    }

    /// Firefox offers every section after the first with port 0 and `a=bundle-only` (RFC 8843 6): part of the
    /// bundle, not rejected. Port 0 without it is a section the offerer rejected.
    @Test func bundleOnlySectionsAreTakenAndPortZeroAloneIsNot() throws {
        let chromium = try Self.fixture("chromium-156-publish-offer")
        let lines = chromium.components(separatedBy: "\r\n")
        let video = try #require(lines.firstIndex { $0.hasPrefix("m=video ") })
        func offer(bundleOnly: Bool) -> String {
            var l = lines
            l[video] = l[video].split(separator: " ").enumerated().map { $0.offset == 1 ? "0" : String($0.element) }.joined(separator: " ")
            if bundleOnly { l.insert("a=bundle-only", at: video + 1) }
            return l.joined(separator: "\r\n")
        }
        #expect(try RemoteOffer(parsing: offer(bundleOnly: true)).sections.map(\.mid) == ["0", "1"])
        #expect(try RemoteOffer(parsing: offer(bundleOnly: false)).sections.map(\.mid) == ["0"])
    }

    /// An offer with a section its offerer rejected (a stopped transceiver: port 0, no `a=bundle-only`) is answered
    /// with that section rejected in its place: an answer has one m-section per offered one, in order (RFC 8829
    /// 5.3.1), which Chromium checks. The answer used to leave it out (found by fuzz-offer's invariant).
    @Test func aSectionTheOffererRejectedKeepsItsPlaceInTheAnswer() throws {
        let lines = try Self.fixture("chromium-156-publish-offer").components(separatedBy: "\r\n")
        let audio = try #require(lines.firstIndex { $0.hasPrefix("m=audio ") })
        var l = lines
        l[audio] = l[audio].split(separator: " ").enumerated().map { $0.offset == 1 ? "0" : String($0.element) }.joined(separator: " ")
        let offer = try RemoteOffer(parsing: l.joined(separator: "\r\n"))
        #expect(offer.sections.map(\.mid) == ["1"] && offer.mids == ["0", "1"])
        let accepted = offer.sections.map { s in
            AnswerSection(mid: s.mid, kind: s.kind, codec: CodecPolicy.publishCodec(for: s)!, direction: .recvonly)
        }
        let answer = try SessionDescription(parsing: offer.answer(accepted, credentials: Self.credentials, fingerprint: Self.fingerprint,
                                                                   candidates: Self.candidates).text)
        #expect(answer.media.map { $0.attribute("mid") } == ["0", "1"])
        #expect(answer.media.map(\.kind) == ["audio", "video"] && answer.media.map(\.port) == [0, 9])
        #expect(answer.attribute("group") == "BUNDLE 1")
    }

    /// Two m-sections with one mid: refused with the reason (RFC 8843), not answered with a duplicate.
    @Test func duplicateMidsAreRefused() throws {
        let text = try Self.fixture("chromium-156-publish-offer").replacingOccurrences(of: "a=mid:1", with: "a=mid:0")
        #expect(throws: NegotiationError.duplicateMid("0")) { try RemoteOffer(parsing: text) }
    }

    @Test func answersAPublisherRecvonlyOnTheMediaPort() throws {
        let offer = try RemoteOffer(parsing: Self.fixture("chromium-156-publish-offer"))
        let accepted = offer.sections.map { s in
            AnswerSection(mid: s.mid, kind: s.kind, codec: CodecPolicy.publishCodec(for: s)!, direction: .recvonly,
                          extensions: [("urn:ietf:params:rtp-hdrext:sdes:mid", 4)])
        }
        let text = offer.answer(accepted, credentials: Self.credentials, fingerprint: Self.fingerprint, candidates: Self.candidates).text
        let answer = try SessionDescription(parsing: text)
        #expect(answer.attribute("group") == "BUNDLE 0 1" && answer.hasAttribute("ice-lite"))
        #expect(answer.media.map(\.formats) == [["111"], ["96", "97"]])
        let video = answer.media[1]
        #expect(video.hasAttribute("recvonly") && video.attribute("setup") == "passive" && video.hasAttribute("rtcp-mux"))
        #expect(video.attributes("rtcp-fb").sorted() == ["96 ccm fir", "96 nack", "96 nack pli"], "only the feedback LiveSwarm acts on")
        #expect(video.attribute("fmtp") == "97 apt=96")
        #expect(video.attributes("candidate") == ["1 1 udp 2130706431 127.0.0.1 8000 typ host"])
        #expect(video.attribute("fingerprint") == Self.fingerprint.sdpValue)
    }

    @Test func answersAViewerWithTheProducersCodecAndOurSSRCs() throws {
        let play = try RemoteOffer(parsing: Self.fixture("chromium-156-play-offer"))
        #expect(play.sections.allSatisfy { $0.direction == .recvonly })
        let producer = RTPCodec(payloadType: 96, name: "VP8", clockRate: 90000)
        let video = play.sections[1]
        let codec = try #require(CodecPolicy.playCodec(matching: producer, in: video))
        #expect(codec.name == "VP8")
        let h264 = RTPCodec(payloadType: 102, name: "H264", clockRate: 90000,
                            parameters: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f")
        #expect(CodecPolicy.playCodec(matching: h264, in: video)?.h264Profile?.idc == 0x42)
        let high = RTPCodec(payloadType: 102, name: "H264", clockRate: 90000, parameters: "packetization-mode=1;profile-level-id=640c1f")
        #expect(CodecPolicy.playCodec(matching: high, in: video) == nil, "Chromium here does not offer to receive High")
        let answer = play.answer([AnswerSection(mid: video.mid, kind: .video, codec: codec, direction: .sendonly,
                                                sending: (ssrc: 42, rtxSSRC: 43, cname: "liveswarm", stream: "live-cam", track: "video"))],
                                 credentials: Self.credentials, fingerprint: Self.fingerprint, candidates: Self.candidates)
        let text = answer.text
        #expect(answer.attribute("group") == "BUNDLE 1", "the rejected audio section leaves the group")
        #expect(answer.media[0].port == 0 && answer.media[1].hasAttribute("sendonly"))
        #expect(text.contains("a=ssrc-group:FID 42 43\r\n") && text.contains("a=ssrc:42 cname:liveswarm\r\n"))
        #expect(text.contains("a=msid:live-cam video\r\n"))
    }

    @Test(arguments: [
        ("not SDP", "hello", NegotiationError.malformedSDP("SDP line 1 is not 'x=value': hello")),
        ("no BUNDLE", "a=group:BUNDLE 0 1\r\n", .notBundled(mid: "0")),
        ("no rtcp-mux", "a=rtcp-mux\r\n", .noRTCPMux(mid: "0")),
        ("no fingerprint", "a=fingerprint:", .missingFingerprint),
        ("passive", "a=setup:actpass", .passiveSetup),
        ("no mid", "a=mid:0\r\n", .missingMid(index: 0)),
    ])
    func badOffersSayWhatIsWrong(_ name: String, _ remove: String, _ expected: NegotiationError) throws {
        var text = try Self.fixture("chromium-156-publish-offer")
        switch name {
        case "not SDP": text = "hello"
        case "passive": text = text.replacingOccurrences(of: "a=setup:actpass", with: "a=setup:passive")
        case "no fingerprint": text = text.replacingOccurrences(of: "a=fingerprint:", with: "a=x-fingerprint:")
        default: text = text.replacingOccurrences(of: remove, with: "")
        }
        #expect(throws: expected, "\(name)") { try RemoteOffer(parsing: text) }
    }

    /// An extmap whose id is "/" (or empty) is skipped: it crashed the parser before (an index out of range), and
    /// so could any WHIP offer or room publish. The SDP parser's own "/" crash was found by fuzz-sdp; this one by
    /// looking for the same pattern.
    @Test func anExtmapWithoutAnIdIsSkipped() throws {
        let text = try Self.fixture("chromium-156-publish-offer")
        for bad in ["a=extmap:/ urn:ietf:params:rtp-hdrext:ssrc-audio-level", "a=extmap:/sendonly urn:ietf:params:rtp-hdrext:ssrc-audio-level"] {
            let offer = try RemoteOffer(parsing: text.replacingOccurrences(of: "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level", with: bad))
            #expect(offer.sections[0].extensions["urn:ietf:params:rtp-hdrext:ssrc-audio-level"] == nil)
        }
    }

    @Test func noCommonCodecIsNamed() throws {
        let text = try Self.fixture("chromium-156-publish-offer")
        let offer = try RemoteOffer(parsing: text.replacingOccurrences(of: "opus/48000/2", with: "speex/48000"))
        #expect(CodecPolicy.publishCodec(for: offer.sections[0]) == nil)
    }
}
