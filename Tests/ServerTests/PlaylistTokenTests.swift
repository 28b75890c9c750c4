@testable import Server
import StreamHub
import Testing

/// A token-gated stream's playlists carry the viewer's token on every URI: players resolve segment, part and init
/// URIs against the playlist's URL without its query.
@Suite struct PlaylistTokenTests {
    @Test func everyURIGetsTheQuery() {
        let playlist = """
            #EXTM3U
            #EXT-X-MAP:URI="init-0.mp4"
            #EXT-X-PART:DURATION=0.5,URI="part-3.0.m4s",INDEPENDENT=YES
            #EXTINF:2.0,
            seg-3.m4s
            #EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-4.1.m4s"
            #EXT-X-RENDITION-REPORT:URI="../other/index.m3u8?x=1",LAST-MSN=4
            stream-5.ts?v=2

            """
        let out = HTTPRoutes.addingQuery("token=abc", to: playlist)
        #expect(out == """
            #EXTM3U
            #EXT-X-MAP:URI="init-0.mp4?token=abc"
            #EXT-X-PART:DURATION=0.5,URI="part-3.0.m4s?token=abc",INDEPENDENT=YES
            #EXTINF:2.0,
            seg-3.m4s?token=abc
            #EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-4.1.m4s?token=abc"
            #EXT-X-RENDITION-REPORT:URI="../other/index.m3u8?x=1&token=abc",LAST-MSN=4
            stream-5.ts?v=2&token=abc

            """)
    }

    @Test func aPlaylistWithoutURIsIsUnchanged() {
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n"
        #expect(HTTPRoutes.addingQuery("token=abc", to: text) == text)
    }

    /// Found by fuzz-hlsparams's long run: a URI ending in a prepended concatenation mark (U+0605), which makes one
    /// grapheme of itself and the "?" after it, read as changed by a Character comparison, and a "?" or a quote
    /// after such a mark, or an "&" before a combining one, escaped Character searches. The playlist and the query
    /// are bytes, as a player reads them; CRLF lines keep their "\r" last.
    @Test func markedCharactersAndCRLFLinesAreReadAsBytes() {
        let out = HTTPRoutes.addingQuery("token=abc", to: "t\"part-\u{4A5}..;U.\u{605}\na\u{605}?b=1\n#X:URI=\"x\u{605}\"\r\nseg-1.m4s\r\n")
        #expect(Array(out.utf8) == Array("t\"part-\u{4A5}..;U.\u{605}?token=abc\na\u{605}?b=1&token=abc\n#X:URI=\"x\u{605}?token=abc\"\r\nseg-1.m4s?token=abc\r\n".utf8))
        #expect(StreamHub.token(inQuery: "b=\u{605}&token=abc") == "abc")
        #expect(StreamHub.token(inQuery: "x=1&\u{301}token=no&token=yes") == "yes")
    }
}
