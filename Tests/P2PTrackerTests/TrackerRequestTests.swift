import Foundation
import P2PTracker
import Testing

/// The WebTorrent tracker protocol's messages: what parses, and what is refused with which error.
@Suite struct TrackerRequestTests {
    static let hash = InfoHash(Array(0..<20).map { UInt8($0 * 13 % 256) })!
    static let peer = PeerID(Array("-LS0001-abcdefghijkl".utf8))!

    /// JSON as a browser's `JSON.stringify` writes a binary string: control characters escaped, U+0080 and up raw.
    /// Written here apart from `Bytes20.jsonString`, so that the parser is tested against a second writer.
    static func js(_ b: Bytes20) -> String {
        var out = ""
        for byte in b.bytes {
            switch byte {
            case 0x22: out += "\\\""
            case 0x5C: out += "\\\\"
            case 0..<0x20: out += String(format: "\\u%04x", byte)
            default: out.unicodeScalars.append(Unicode.Scalar(byte))
            }
        }
        return "\"" + out + "\""
    }

    @Test func bytes20RoundTrips() throws {
        let bytes: [UInt8] = (0..<20).map { UInt8(255 - $0 * 7) }
        let b = try #require(Bytes20(bytes))
        #expect(b.bytes == bytes)
        #expect(Bytes20(binaryString: b.binaryString) == b)
        #expect(Bytes20(hex: b.hex) == b)
        #expect(b.hex.count == 40)
        #expect(Bytes20(binaryString: String(repeating: "a", count: 19)) == nil)
        #expect(Bytes20(binaryString: String(repeating: "a", count: 21)) == nil)
        #expect(Bytes20(binaryString: String(repeating: "a", count: 19) + "\u{100}") == nil, "U+0100 is not a byte")
        #expect(Bytes20(hex: String(repeating: "g", count: 40)) == nil)
    }

    @Test func liveSwarmHashesDependOnStreamAndEpoch() {
        let a = InfoHash.liveSwarm(stream: "live/cam", epoch: 1)
        #expect(a == InfoHash.liveSwarm(stream: "live/cam", epoch: 1))
        #expect(a != InfoHash.liveSwarm(stream: "live/cam", epoch: 2))
        #expect(a != InfoHash.liveSwarm(stream: "live/cam2", epoch: 1))
        // SHA-1 of "liveswarm:v1:live/cam:1" (checked with `printf %s ... | sha1sum`).
        #expect(a.hex == "ace301f3175b120540d6516642113e6f3f57b560")
    }

    @Test func anAnnounceWithOffers() throws {
        let text = """
        {"action":"announce","info_hash":\(Self.js(Self.hash)),"peer_id":\(Self.js(Self.peer)),"numwant":3,\
        "uploaded":1200,"downloaded":5000,"left":0,"event":"started","offers":[{"offer":{"type":"offer",\
        "sdp":"v=0\\r\\no=- 1 2 IN IP4 127.0.0.1\\r\\n"},"offer_id":"4f1b2c"}]}
        """
        let r = try TrackerRequest(parsing: text)
        guard case .announce(let a) = r else { Issue.record("not an announce: \(r)"); return }
        #expect(a.infoHash == Self.hash && a.peerID == Self.peer)
        #expect(a.numwant == 3 && a.uploaded == 1200 && a.left == 0 && a.event == .started)
        #expect(a.offers.count == 1 && a.offers[0].id == "4f1b2c")
        #expect(a.offers[0].description.sdp == "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n")
    }

    @Test func anAnswer() throws {
        let text = """
        {"action":"announce","info_hash":\(Self.js(Self.hash)),"peer_id":\(Self.js(Self.peer)),\
        "to_peer_id":\(Self.js(Self.hash)),"offer_id":"x1","answer":{"type":"answer","sdp":"v=0"}}
        """
        guard case .answer(let a) = try TrackerRequest(parsing: text) else { Issue.record("not an answer"); return }
        #expect(a.toPeerID == Self.hash && a.offerID == "x1" && a.description.sdp == "v=0")
    }

    @Test func scrapes() throws {
        #expect(try TrackerRequest(parsing: #"{"action":"scrape"}"#) == .scrape([]))
        #expect(try TrackerRequest(parsing: "{\"action\":\"scrape\",\"info_hash\":[\(Self.js(Self.hash))]}") == .scrape([Self.hash]))
    }

    @Test(arguments: [
        ("", TrackerError.malformedJSON),
        ("not json", .malformedJSON),
        ("{\"action\":", .malformedJSON),
        ("[1,2,3]", .malformedJSON),
        ("\"announce\"", .malformedJSON),
        ("{}", .missingField("action")),
        (#"{"action":42}"#, .malformedField("action")),
        (#"{"action":"delete_everything"}"#, .unknownAction("delete_everything")),
        (#"{"action":"announce"}"#, .missingField("info_hash")),
        (#"{"action":"announce","info_hash":"0123456789012345678"}"#, .wrongLength(field: "info_hash", characters: 19)),
        (#"{"action":"announce","info_hash":"012345678901234567890"}"#, .wrongLength(field: "info_hash", characters: 21)),
        (#"{"action":"announce","info_hash":"0123456789abcdef0123456789abcdef01234567"}"#, .wrongLength(field: "info_hash", characters: 40)),
        (#"{"action":"announce","info_hash":"0123456789012345678\u0100"}"#, .malformedField("info_hash")),
        (#"{"action":"announce","info_hash":["01234567890123456789"]}"#, .malformedField("info_hash")),
        (#"{"action":"announce","info_hash":"01234567890123456789"}"#, .missingField("peer_id")),
        (#"{"action":"announce","info_hash":"01234567890123456789","peer_id":"short"}"#, .wrongLength(field: "peer_id", characters: 5)),
        (#"{"action":"announce","info_hash":"01234567890123456789","peer_id":"01234567890123456789","numwant":"5"}"#, .malformedField("numwant")),
        (#"{"action":"announce","info_hash":"01234567890123456789","peer_id":"01234567890123456789","numwant":-1}"#, .malformedField("numwant")),
        (#"{"action":"announce","info_hash":"01234567890123456789","peer_id":"01234567890123456789","uploaded":true}"#, .malformedField("uploaded")),
        (#"{"action":"announce","info_hash":"01234567890123456789","peer_id":"01234567890123456789","event":"paused"}"#, .malformedField("event")),
        (#"{"action":"announce","info_hash":"01234567890123456789","peer_id":"01234567890123456789","offers":{}}"#, .malformedField("offers")),
        (#"{"action":"announce","info_hash":"01234567890123456789","peer_id":"01234567890123456789","offers":[{"offer_id":"a"}]}"#, .missingField("offers[].offer")),
        (#"{"action":"announce","info_hash":"01234567890123456789","peer_id":"01234567890123456789","offers":[{"offer":{"type":"offer","sdp":"x"}}]}"#, .missingField("offers[].offer_id")),
        (#"{"action":"announce","info_hash":"01234567890123456789","peer_id":"01234567890123456789","offers":[{"offer_id":"a","offer":{"type":"answer","sdp":"x"}}]}"#, .malformedField("offer.type")),
        (#"{"action":"announce","info_hash":"01234567890123456789","peer_id":"01234567890123456789","offers":[{"offer_id":"a","offer":{"type":"offer"}}]}"#, .missingField("offer.sdp")),
        (#"{"action":"announce","info_hash":"01234567890123456789","peer_id":"01234567890123456789","offers":[{"offer_id":"","offer":{"type":"offer","sdp":"x"}}]}"#, .malformedField("offer_id")),
        (#"{"action":"announce","info_hash":"01234567890123456789","peer_id":"01234567890123456789","answer":{"type":"answer","sdp":"x"},"offer_id":"a"}"#, .missingField("to_peer_id")),
        (#"{"action":"announce","info_hash":"01234567890123456789","peer_id":"01234567890123456789","answer":{"type":"answer","sdp":"x"},"to_peer_id":"01234567890123456789"}"#, .missingField("offer_id")),
        (#"{"action":"announce","info_hash":"01234567890123456789","peer_id":"01234567890123456789","answer":"v=0"}"#, .malformedField("answer")),
    ] as [(String, TrackerError)])
    func malformedMessagesAreRefused(text: String, expected: TrackerError) {
        #expect(throws: expected) { try TrackerRequest(parsing: text) }
    }

    @Test func responsesAreJSONThatABrowserReadsBack() throws {
        let sdp = "v=0\r\na=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host\r\n\"quoted\" \\ \u{1}"
        let text = TrackerResponse.offer(infoHash: Self.hash, from: Self.peer, offerID: "id\"1", sdp: sdp).json
        let o = try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(o["action"] as? String == "announce")
        #expect((o["offer"] as? [String: Any])?["sdp"] as? String == sdp)
        #expect((o["offer"] as? [String: Any])?["type"] as? String == "offer")
        #expect(o["offer_id"] as? String == "id\"1")
        #expect(Bytes20(binaryString: o["info_hash"] as? String ?? "") == Self.hash)
        #expect(Bytes20(binaryString: o["peer_id"] as? String ?? "") == Self.peer)
        let failure = TrackerResponse.failure(reason: "no", action: "announce", infoHash: nil).json
        #expect(failure == #"{"failure reason":"no","action":"announce"}"#)
    }
}
