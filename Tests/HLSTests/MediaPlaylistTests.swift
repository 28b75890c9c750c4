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
}
