import FuzzSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
@testable import Server
import StreamHub

/// What an HLS request carries: the blocking directives `_HLS_msn`/`_HLS_part`, the file names of segments, parts
/// and init sections, the stream name, the viewer id and the playback token, and the token written back onto every
/// URI of a playlist. The input's first line is the request's URI, the rest a playlist. Numbers read are never
/// negative; a token survives being put on the playlist's URIs and read back from one, which carries no byte a
/// playlist or URL would read otherwise; the playlist keeps its lines, each URI line gaining only the query.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let (first, playlist) = text.firstIndex(of: "\n").map { (String(text[..<$0]), String(text[text.index(after: $0)...])) } ?? (text, "")
    let uri = URI(first)
    if let d = try? HTTPRoutes.blockingDirectives(uri) {
        check((d.segment ?? 0) >= 0 && (d.part ?? 0) >= 0 && (d.part == nil || d.segment != nil), "\(d)")
    }
    let file = String(uri.path.split(separator: "/").last ?? "")
    for (prefix, suffix, count) in [("init-", ".mp4", 1), ("seg-", ".m4s", 1), ("part-", ".m4s", 2)] {
        if let n = HTTPRoutes.numbers(file, prefix: prefix, suffix: suffix, count: count) {
            check(n.count == count && n.allSatisfy { $0 >= 0 }, "\(file): \(n)")
        }
    }
    let parts = uri.path.split(separator: "/").map(String.init)
    if parts.count >= 2, let key = StreamKey(app: parts[0], stream: parts[1]) {
        check(StreamKey(name: key.description) == key, "stream key \(key) does not read back")
    }
    let request = Request(head: HTTPRequest(method: .get, scheme: "http", authority: "127.0.0.1", path: first.isEmpty ? "/" : first),
                          body: .init(buffer: .init()))
    let client = HLSAudience.client(request, address: "192.0.2.1")
    check(!client.id.isEmpty && client.id.utf8.count <= 200, "viewer id \(client.id)")
    if let token = uri.query.flatMap({ StreamHub.token(inQuery: $0[...]) }) {
        let encoded = HTTPRoutes.encodedToken(token)
        check(encoded.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "&") && $0 != UInt8(ascii: "#") },
              "the token written on playlist URIs: \(encoded.debugDescription)")
        let rewritten = HTTPRoutes.addingQuery("token=\(encoded)", to: playlist)
        // Lines and queries as bytes, as a player reads them (a Character comparison calls a line changed when a
        // mark makes one grapheme of its last character and the "?" added after it).
        let newline = UInt8(ascii: "\n"), cr = UInt8(ascii: "\r")
        let before = playlist.utf8.split(separator: newline, omittingEmptySubsequences: false)
        let after = rewritten.utf8.split(separator: newline, omittingEmptySubsequences: false)
        check(before.count == after.count, "\(before.count) playlist lines became \(after.count)")
        for (b, a) in zip(before, after) {
            let line = b.last == cr ? b.dropLast() : b
            guard !line.isEmpty, line.first != UInt8(ascii: "#") else { continue }
            let (aText, bText) = (String(decoding: a, as: UTF8.self), String(decoding: b, as: UTF8.self))
            check(a.starts(with: line), "a URI line changed: \(bText.debugDescription) -> \(aText.debugDescription)")
            // The query a player sends: the line's own, if any, then what was added ("?token=..." or "&token=...").
            var query: [UInt8] = []
            if let q = line.firstIndex(of: UInt8(ascii: "?")) { query += line[line.index(after: q)...] }
            let added = (b.last == cr ? a.dropLast() : a).dropFirst(line.count)
            query += query.isEmpty ? added.dropFirst() : added
            let last = query.split(separator: UInt8(ascii: "&")).last { $0.starts(with: "token=".utf8) }
            check(last.flatMap { StreamHub.token(inQuery: Substring(String(decoding: $0, as: UTF8.self))) } == token,
                  "the token does not read back from \(aText.debugDescription)")
        }
    }
    return 0
}
