import Foundation
import SDP
import Testing

@Suite struct SessionDescriptionTests {
    /// An offer as Chromium 156 writes it for one DataChannel (trimmed of nothing but its numbers).
    static let chromiumOffer = """
        v=0\r
        o=- 4611731400430051336 2 IN IP4 127.0.0.1\r
        s=-\r
        t=0 0\r
        a=group:BUNDLE 0\r
        a=extmap-allow-mixed\r
        a=msid-semantic: WMS\r
        m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r
        c=IN IP4 0.0.0.0\r
        a=ice-ufrag:Vx7J\r
        a=ice-pwd:Dz7T0/bFAnJc3Xy9Yk6Y9v5m\r
        a=ice-options:trickle\r
        a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r
        a=setup:actpass\r
        a=mid:0\r
        a=sctp-port:5000\r
        a=max-message-size:262144\r

        """

    @Test func parsesSessionAndMediaSections() throws {
        let sdp = try SessionDescription(parsing: Self.chromiumOffer)
        #expect(sdp.session.first == .init("v", "0"))
        #expect(sdp.attribute("group") == "BUNDLE 0" && sdp.hasAttribute("extmap-allow-mixed"))
        #expect(sdp.media.count == 1)
        let m = try #require(sdp.media.first)
        #expect(m.kind == "application" && m.port == 9 && m.proto == "UDP/DTLS/SCTP" && m.formats == ["webrtc-datachannel"])
        #expect(m.attribute("ice-ufrag") == "Vx7J" && m.attribute("mid") == "0" && m.attribute("setup") == "actpass")
        #expect(m.hasAttribute("ice-options") && !m.hasAttribute("ice-lite"))
    }

    @Test func writesWhatItReadsWithCRLF() throws {
        let sdp = try SessionDescription(parsing: Self.chromiumOffer)
        #expect(sdp.text == Self.chromiumOffer)
        let lf = try SessionDescription(parsing: Self.chromiumOffer.replacingOccurrences(of: "\r\n", with: "\n"))
        #expect(lf == sdp, "bare LF line ends are accepted")
    }

    @Test func severalMediaSectionsAndRepeatedAttributes() throws {
        let text = "v=0\r\ns=-\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n"
            + "m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\n"
        let sdp = try SessionDescription(parsing: text)
        #expect(sdp.media.map(\.kind) == ["audio", "video"])
        #expect(sdp.media[0].attributes("rtpmap") == ["111 opus/48000/2", "0 PCMU/8000"])
        #expect(sdp.media[1].port == 0 && sdp.media[1].lines == [.init("a", "mid:1")])
    }

    @Test(arguments: [
        ("empty", "", SDPError.missingVersion),
        ("no v= first", "o=- 1 1 IN IP4 0.0.0.0\r\nv=0\r\n", .missingVersion),
        ("version 1", "v=1\r\n", .missingVersion),
        ("not x=value", "v=0\r\nhello\r\n", .malformedLine(2, "hello")),
        ("upper-case type", "v=0\r\nA=foo\r\n", .malformedLine(2, "A=foo")),
        ("m= without proto", "v=0\r\nm=audio 9\r\n", .malformedMediaLine(2, "audio 9")),
        ("m= port not a number", "v=0\r\nm=audio x RTP/AVP 0\r\n", .malformedMediaLine(2, "audio x RTP/AVP 0")),
        ("m= port too large", "v=0\r\nm=audio 70000 RTP/AVP 0\r\n", .malformedMediaLine(2, "audio 70000 RTP/AVP 0")),
        // Found by fuzz-sdp: a value ending in bare CRs lost one each time it was written and parsed again; a bare CR
        // is a line break to other parsers, and values are written back into answers.
        ("bare CRs in a value", "v=0\r\nc=IN IP4 0.0.0.0\r\r\r\n", .malformedLine(2, "c=IN IP4 0.0.0.0\r")),
        ("a bare CR inside", "v=0\r\na=mid:0\ra=x\r\n", .malformedLine(2, "a=mid:0\ra=x")),
        ("NUL", "v=0\r\na=mid:\u{0}\r\n", .malformedLine(2, "a=mid:\u{0}")),
        // Found by fuzz-sdp: a port of "/" crashed the parser (an index out of range), so any WHIP offer could.
        ("m= port a slash", "v=0\r\nm=vid2eo / VPA[o \n", .malformedMediaLine(2, "vid2eo / VPA[o ")),
        ("m= port slash count", "v=0\r\nm=audio /2 RTP/AVP 0\r\n", .malformedMediaLine(2, "audio /2 RTP/AVP 0")),
    ])
    func malformedDocumentsAreRejectedWithANamedError(_ name: String, _ text: String, _ expected: SDPError) {
        #expect(throws: expected, "\(name)") { try SessionDescription(parsing: text) }
    }

    @Test func oversizedIsRejected() {
        let huge = "v=0\r\n" + String(repeating: "a=x\r\n", count: 60_000)
        #expect(throws: SDPError.tooLarge(huge.utf8.count)) { try SessionDescription(parsing: huge) }
    }
}
