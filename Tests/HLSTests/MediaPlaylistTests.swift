@testable import HLS
import Testing

@Suite struct MediaPlaylistTests {
    @Test func rendersAWindowWithADiscontinuity() {
        let p = MediaPlaylist(targetDuration: 6, mediaSequence: 7, discontinuitySequence: 1, entries: [
            .init(sequence: 7, duration: 2.0, discontinuity: false, uri: "cam-7.ts"),
            .init(sequence: 8, duration: 1.966, discontinuity: true, uri: "cam-8.ts"),
        ], independentSegments: true)
        #expect(p.render() == """
            #EXTM3U
            #EXT-X-VERSION:3
            #EXT-X-TARGETDURATION:6
            #EXT-X-MEDIA-SEQUENCE:7
            #EXT-X-DISCONTINUITY-SEQUENCE:1
            #EXT-X-INDEPENDENT-SEGMENTS
            #EXTINF:2.000,
            cam-7.ts
            #EXT-X-DISCONTINUITY
            #EXTINF:1.966,
            cam-8.ts

            """)
    }

    /// RFC 4648 section 10's vectors.
    @Test(arguments: [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="),
                      ("foobar", "Zm9vYmFy")])
    func base64(text: String, expected: String) {
        #expect(MediaPlaylist.base64(Array(text.utf8)) == expected)
    }

    @Test func endedPlaylistsSayso() {
        var p = MediaPlaylist(targetDuration: 4, entries: [.init(sequence: 0, duration: 4, discontinuity: false, uri: "a-0.ts")])
        #expect(!p.render().contains("ENDLIST"))
        p.ended = true
        #expect(p.render().hasSuffix("a-0.ts\n#EXT-X-ENDLIST\n"))
    }

    @Test(arguments: [(0.0, "0.000"), (2.0, "2.000"), (1.9999, "2.000"), (0.0405, "0.041"), (12.3456, "12.346"), (-1, "0.000")])
    func formatsDurations(seconds: Double, text: String) {
        #expect(MediaPlaylist.format(seconds) == text)
    }

    /// The low-latency tags: server control and part target first, a map before the first segment and again
    /// after the discontinuity that changes it, parts before their segment's EXTINF, the segment in progress
    /// by its parts only, and the preload hint last.
    @Test func rendersTheLowLatencyTags() {
        let p = MediaPlaylist(targetDuration: 6, mediaSequence: 3, entries: [
            .init(sequence: 3, duration: 1.0, discontinuity: false, uri: "seg-3.m4s", map: "init-0.mp4",
                  programDateTime: 1_795_327_340_202,
                  parts: [.init(duration: 0.5, uri: "part-3.0.m4s", independent: true),
                          .init(duration: 0.5, uri: "part-3.1.m4s", independent: false, sha256: [0xfb, 0xff, 0x00, 0x01])]),
            .init(sequence: 4, duration: nil, discontinuity: true, uri: nil, map: "init-1.mp4",
                  programDateTime: 1_795_327_345_000,
                  parts: [.init(duration: 0.467, uri: "part-4.0.m4s", independent: true)]),
        ], lowLatency: .init(partTarget: 0.5, partHoldBack: 1.5, preloadHint: "part-4.1.m4s"))
        #expect(p.render() == """
            #EXTM3U
            #EXT-X-VERSION:6
            #EXT-X-TARGETDURATION:6
            #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500
            #EXT-X-PART-INF:PART-TARGET=0.500
            #EXT-X-MEDIA-SEQUENCE:3
            #EXT-X-INDEPENDENT-SEGMENTS
            #EXT-X-MAP:URI="init-0.mp4"
            #EXT-X-PROGRAM-DATE-TIME:2026-11-22T06:02:20.202Z
            #EXT-X-PART:DURATION=0.500,URI="part-3.0.m4s",INDEPENDENT=YES
            #EXT-X-PART:DURATION=0.500,URI="part-3.1.m4s",X-SHA256="+/8AAQ=="
            #EXTINF:1.000,
            seg-3.m4s
            #EXT-X-DISCONTINUITY
            #EXT-X-MAP:URI="init-1.mp4"
            #EXT-X-PROGRAM-DATE-TIME:2026-11-22T06:02:25.000Z
            #EXT-X-PART:DURATION=0.467,URI="part-4.0.m4s",INDEPENDENT=YES
            #EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-4.1.m4s"

            """)
        var ended = p
        ended.ended = true
        #expect(!ended.render().contains("PRELOAD-HINT") && ended.render().hasSuffix("#EXT-X-ENDLIST\n"))
    }

    /// RFC 3339 times checked against Python's datetime, leap day and the end of a century included.
    @Test(arguments: [(Int64(0), "1970-01-01T00:00:00.000Z"), (1_795_327_340_202, "2026-11-22T06:02:20.202Z"),
                      (951_782_400_000, "2000-02-29T00:00:00.000Z"), (4_107_542_399_999, "2100-02-28T23:59:59.999Z")])
    func formatsProgramDateTime(ms: Int64, text: String) {
        #expect(MediaPlaylist.iso8601(ms) == text)
    }
}
