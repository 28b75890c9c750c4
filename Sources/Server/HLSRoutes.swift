import Foundation
import HLS
import HTTPTypes
import Hummingbird
import HummingbirdCore
import NIOCore
import P2PTracker
import Signaling
import StreamHub

/// The HLS surface: the MPEG-TS playlist and segments at `/APP/STREAM.m3u8` and `/APP/STREAM-N.ts`, and the
/// low-latency CMAF rendition under `/APP/STREAM/`: `index.m3u8`, `init-N.mp4`, `seg-N.m4s`, `part-N.I.m4s`.
///
/// Caching: playlists change all the time (`no-cache`); segments, parts and init sections never change once
/// made (`immutable`). CORS comes from the router's middleware.
extension HTTPRoutes {
    func addHLSRoutes(to router: Hummingbird.Router<HTTPContext>) {
        // The router wants one parameter name per depth: the stream sits where `/:app/:file` has its file.
        router.get("/:app/:file/:name") { request, context in
            let key = try streamKey(context.parameters.require("app"), context.parameters.require("file"))
            let file = try context.parameters.require("name")
            try checkPlayback(key, request)
            return try await cmaf(request: request, key: key, file: file, client: client(request, context))
        }
        router.get("/api/v1/streams/:app/:stream/chunks") { request, context in
            let key = try streamKey(context.parameters.require("app"), context.parameters.require("stream"))
            try checkPlayback(key, request)
            return try chunkList(key, host: request.head.authority)
        }
    }

    /// `GET /app/stream.m3u8`: the live MPEG-TS playlist. It blocks on `_HLS_msn` like the low-latency one.
    func hlsPlaylist(request: Request, context: HTTPContext, file: String) async throws -> Response {
        let key = try streamKey(context.parameters.require("app"), String(file.dropLast(5)))
        try checkPlayback(key, request)
        let directives = try Self.blockingDirectives(request.uri)
        if directives.part != nil {
            throw HTTPError(.badRequest, message: "_HLS_part: the MPEG-TS playlist has no parts (use \(key.stream)/index.m3u8)")
        }
        try await block(key, directives)
        guard let playlist = hls.renderedPlaylist(key, lowLatency: false) else {
            throw HTTPError(.notFound, message: "no HLS segment of \(key) yet (is it live?)")
        }
        return playlistResponse(tokened(playlist, key, request), key, .ts, client(request, context))
    }

    /// The viewer's token: the `token` query parameter.
    func playbackToken(_ request: Request) -> String? {
        request.uri.query.flatMap { StreamHub.token(inQuery: $0[...]) }
    }

    /// 401 without a token, 403 with a wrong one, when the stream needs one (a broadcast room with a secret).
    func checkPlayback(_ key: StreamKey, _ request: Request) throws {
        let token = playbackToken(request)
        guard let why = hub.playbackRefusal(key, token: token) else { return }
        throw HTTPError(token == nil ? .unauthorized : .forbidden, message: why)
    }

    /// A playlist of a stream that needs a token, with the viewer's token on every URI in it: players resolve
    /// segment, part and init URIs against the playlist's URL without its query.
    func tokened(_ playlist: ByteBuffer, _ key: StreamKey, _ request: Request) -> ByteBuffer {
        guard let token = playbackToken(request), hub.playbackRefusal(key, token: nil) != nil else { return playlist }
        return ByteBuffer(string: Self.addingQuery("token=\(Self.encodedToken(token))", to: String(buffer: playlist)))
    }

    /// A token as a query value: everything but RFC 3986's unreserved characters percent-encoded.
    static func encodedToken(_ token: String) -> String {
        token.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(.init(charactersIn: "-._~"))) ?? token
    }

    /// `query` added to each URI line and each `URI="..."` attribute of a playlist. The playlist is read as bytes,
    /// as a player reads it: a Character search misses a "?" or a quote that a combining or prepended mark makes part
    /// of one grapheme with its neighbour (found by fuzz-hlsparams's long run), and "\r\n" is one Character. A line
    /// ending "\r\n" gets the query before the "\r".
    static func addingQuery(_ query: String, to playlist: String) -> String {
        let (quote, question, newline, cr) = (UInt8(ascii: "\""), UInt8(ascii: "?"), UInt8(ascii: "\n"), UInt8(ascii: "\r"))
        let attribute = Array("URI=\"".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(playlist.utf8.count + 64)
        func add(_ uri: Substring.UTF8View) {
            out += uri
            out.append(uri.contains(question) ? UInt8(ascii: "&") : question)
            out += query.utf8
        }
        for (n, line) in playlist.utf8.split(separator: newline, omittingEmptySubsequences: false).enumerated() {
            if n > 0 { out.append(newline) }
            let body = line.last == cr ? line.dropLast() : line
            if body.isEmpty {
                out += line
            } else if body.first != UInt8(ascii: "#") {
                add(body)
                if body.count < line.count { out.append(cr) }
            } else {
                var rest = line[...]
                while let start = rest.firstRange(of: attribute) {
                    out += rest[..<start.upperBound]
                    rest = rest[start.upperBound...]
                    guard let close = rest.firstIndex(of: quote) else { break }
                    add(rest[..<close])
                    rest = rest[close...]
                }
                out += rest
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The viewer a request is from (``HLSAudience/client(_:address:)``).
    func client(_ request: Request, _ context: HTTPContext) -> HLSAudience.Client {
        HLSAudience.client(request, address: context.remoteAddress?.ipAddress)
    }

    /// `GET /app/stream-N.ts`: one segment.
    func hlsSegment(request: Request, context: HTTPContext, file: String) throws -> Response {
        let name = file.dropLast(3)
        guard let dash = name.lastIndex(of: "-"), let sequence = Self.number(name[name.index(after: dash)...]) else {
            throw HTTPError(.notFound, message: "segment names are STREAM-N.ts")
        }
        let key = try streamKey(context.parameters.require("app"), String(name[..<dash]))
        try checkPlayback(key, request)
        guard let segment = hls.segment(key, sequence: sequence) else {
            throw HTTPError(.notFound, message: "segment \(sequence) of \(key) is not (or no longer) available")
        }
        return immutable(contentType: "video/mp2t", [segment.data], key, .ts, client(request, context))
    }

    /// The CMAF rendition's files.
    func cmaf(request: Request, key: StreamKey, file: String, client: HLSAudience.Client) async throws -> Response {
        if file == "index.m3u8" {
            try await block(key, Self.blockingDirectives(request.uri))
            guard let playlist = hls.renderedPlaylist(key, lowLatency: true) else {
                throw HTTPError(.notFound, message: "no CMAF part of \(key) yet (is it live?)")
            }
            return playlistResponse(tokened(playlist, key, request), key, .cmaf, client)
        }
        if let id = Self.numbers(file, prefix: "init-", suffix: ".mp4", count: 1) {
            guard let section = hls.initSection(key, id: id[0]) else {
                throw HTTPError(.notFound, message: "init section \(id[0]) of \(key) is not (or no longer) available")
            }
            return immutable(contentType: "video/mp4", [section.data], key, .cmaf, client)
        }
        if let n = Self.numbers(file, prefix: "seg-", suffix: ".m4s", count: 1) {
            guard let segment = hls.segment(key, sequence: n[0]) else {
                throw HTTPError(.notFound, message: "segment \(n[0]) of \(key) is not (or no longer) available")
            }
            return immutable(contentType: "video/mp4", segment.parts.map(\.data), key, .cmaf, client)
        }
        if let n = Self.numbers(file, prefix: "part-", suffix: ".m4s", count: 2) {
            return try await part(key, segment: n[0], index: n[1], client: client)
        }
        throw HTTPError(.notFound, message: "CMAF files are index.m3u8, init-N.mp4, seg-N.m4s and part-N.I.m4s")
    }

    /// A part; one not made yet (the preload hint, or a little ahead of it) is answered when it is.
    func part(_ key: StreamKey, segment: Int, index: Int, client: HLSAudience.Client) async throws -> Response {
        if hls.part(key, segment: segment, index: index) == nil {
            try await block(key, (segment, index))
        }
        guard let part = hls.part(key, segment: segment, index: index) else {
            throw HTTPError(.notFound, message: "part \(segment).\(index) of \(key) is not (or no longer) available")
        }
        var response = immutable(contentType: "video/mp4", [part.data], key, .cmaf, client)
        // RFC 9530: lets a viewer that got this chunk from a peer compare it with the origin's.
        response.headers[HTTPField.Name("Repr-Digest")!] = "sha-256=:\(Data(part.sha256).base64EncodedString()):"
        return response
    }

    /// Holds a request until the playlist has what the directives ask for (HLS draft 6.2.5.2), answering 400
    /// at once for requests no client following the playlist would make, and 503 after the blocking limit.
    func block(_ key: StreamKey, _ directives: (segment: Int?, part: Int?)) async throws {
        guard let segment = directives.segment else { return }
        switch hls.checkBlockingRequest(key, segment: segment, part: directives.part) {
        case .noSuchStream: throw HTTPError(.notFound, message: "stream \(key) is not live")
        case .tooFarAhead: throw HTTPError(.badRequest, message: "_HLS_msn/_HLS_part too far ahead of the live edge")
        case nil: break
        }
        switch await hls.wait(key, segment: segment, part: directives.part,
                              timeout: .milliseconds(hls.configuration.blockingLimit)) {
        case .ready: return
        case .timedOut: throw HTTPError(.serviceUnavailable, message: "\(key) produced nothing new within the blocking limit")
        case .gone: throw HTTPError(.notFound, message: "stream \(key) is not live")
        case .shuttingDown: throw HTTPError(.serviceUnavailable, message: "the server is shutting down")
        }
    }

    /// `_HLS_msn` and `_HLS_part`: non-negative integers, and `_HLS_part` only with `_HLS_msn` (400 otherwise).
    static func blockingDirectives(_ uri: URI) throws -> (segment: Int?, part: Int?) {
        let query = uri.queryParameters
        func value(_ name: Substring) throws -> Int? {
            guard let raw = query[name] else { return nil }
            guard let n = number(raw) else { throw HTTPError(.badRequest, message: "\(name) must be a non-negative integer") }
            return n
        }
        let segment = try value("_HLS_msn")
        let part = try value("_HLS_part")
        if part != nil && segment == nil { throw HTTPError(.badRequest, message: "_HLS_part needs _HLS_msn") }
        return (segment, part)
    }

    /// A non-negative decimal that fits in an Int (no sign, no spaces, at most 18 digits).
    static func number(_ s: Substring) -> Int? {
        guard !s.isEmpty, s.count <= 18, s.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(s)
    }

    /// `prefix` + `count` dot-separated numbers + `suffix`, e.g. `part-12.3.m4s`.
    static func numbers(_ file: String, prefix: String, suffix: String, count: Int) -> [Int]? {
        guard file.hasPrefix(prefix), file.hasSuffix(suffix), file.count > prefix.count + suffix.count else { return nil }
        let middle = file.dropFirst(prefix.count).dropLast(suffix.count)
        let values = middle.split(separator: ".", omittingEmptySubsequences: false).map { number($0) }
        guard values.count == count, values.allSatisfy({ $0 != nil }) else { return nil }
        return values.map { $0! }
    }

    /// Bodies are counted per stream and viewer as they are written (`OriginCounter`, for `/api/v1/p2p` and the
    /// dashboard).
    func playlistResponse(_ text: ByteBuffer, _ key: StreamKey, _ rendition: HLSAudience.Rendition,
                          _ client: HLSAudience.Client) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/vnd.apple.mpegurl"
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: origin.body([text], for: key, playlist: true, rendition: rendition, client: client))
    }

    func immutable(contentType: String, _ buffers: [ByteBuffer], _ key: StreamKey, _ rendition: HLSAudience.Rendition,
                   _ client: HLSAudience.Client) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        headers[.cacheControl] = "public, max-age=3600, immutable"
        return Response(status: .ok, headers: headers, body: origin.body(buffers, for: key, playlist: false, rendition: rendition, client: client))
    }

    /// `GET /api/v1/streams/APP/STREAM/chunks`: the CMAF chunks in the window with their ids and SHA-256, the
    /// list a P2P viewer checks received chunks against.
    func chunkList(_ key: StreamKey, host authority: String?) throws -> ChunkList {
        guard let c = hls.chunks(key) else { throw HTTPError(.notFound, message: "no HLS rendition of \(key)") }
        func entry(_ p: Part) -> ChunkList.Chunk {
            ChunkList.Chunk(id: p.id, uri: Segmenter.partURI(segment: p.segment, index: p.index), segment: p.segment,
                            part: p.index, duration: p.duration, independent: p.independent, bytes: p.data.readableBytes,
                            sha256: p.sha256.map { String(format: "%02x", $0) }.joined())
        }
        // Peers find their addresses with LiveSwarm's STUN server; TURN only when the operator allows it for P2P
        // (--turn-for-p2p): a relay carries the bytes P2P is meant to keep off the servers.
        var iceServers: [ICEServer] = []
        if let webRTC, let authority, let host = ICEServerDirectory.host(ofAuthority: authority) {
            iceServers = webRTC.iceServers.p2pServers(host: host)
        }
        let swarm = hls.epochs()[key].map { epoch in
            ChunkList.Swarm(infoHash: InfoHash.liveSwarm(stream: "\(key)", epoch: epoch).hex, tracker: "/tracker",
                            iceServers: iceServers)
        }
        return ChunkList(
            stream: "\(key)",
            p2p: !tracker.p2pOff.contains("\(key)"),
            swarm: swarm,
            initSections: c.initSections.map { .init(id: $0.id, uri: Segmenter.initURI($0.id), codecs: $0.codecs, bytes: $0.data.readableBytes) },
            chunks: c.segments.flatMap { $0.parts.map(entry) } + c.open.map(entry))
    }
}

struct ChunkList: ResponseEncodable {
    struct InitEntry: Codable { var id: Int; var uri: String; var codecs: String; var bytes: Int }
    struct Chunk: Codable {
        var id: String
        var uri: String
        var segment: Int
        var part: Int
        var duration: Double
        var independent: Bool
        var bytes: Int
        var sha256: String
    }
    /// The stream's P2P swarm: its info hash (hex; the tracker wants it as a 20-character binary string) and the
    /// tracker's path. Nil once the stream has ended.
    struct Swarm: Codable { var infoHash: String; var tracker: String; var iceServers: [ICEServer] }
    var stream: String
    /// False while the operator has P2P switched off for the stream: the tracker then sends its viewers to the origin.
    var p2p: Bool
    var swarm: Swarm?
    var initSections: [InitEntry]
    var chunks: [Chunk]
}
