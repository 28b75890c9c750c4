import Foundation
import Hummingbird
import StreamHub
import Locks

/// Who watches each stream over HLS. HTTP has no connection per viewer, so a viewer is a client that fetched one of
/// the stream's playlists in the last ``expiry`` seconds (every HLS player reloads its playlist at least once a
/// target duration; a low-latency one holds a blocking reload open all the time).
///
/// A client is told apart by the `viewer` query parameter when its requests carry one (LiveSwarm's own players and P2P
/// viewers do: `index.m3u8?viewer=ID`, and their parts too), else by its address and User-Agent (ffmpeg, Safari,
/// hls.js: two such players behind one address with the same browser count as one). Bytes are counted per viewer as
/// they are served, which is how the P2P switch is checked: by the origin's own count of what each viewer took.
final class HLSAudience: Sendable {
    enum Rendition: String, Codable, Sendable {
        /// The MPEG-TS playlist and segments.
        case ts = "hls"
        /// The CMAF rendition with parts, `/APP/STREAM/index.m3u8`.
        case cmaf = "ll-hls"
    }

    struct Viewer: Codable, Sendable, Equatable {
        /// `viewer` from the query, or `address User-Agent` for a client that sends none.
        var id: String
        /// True when it sent its own `viewer` parameter, false when told apart by address.
        var labelled: Bool
        var `protocol`: Rendition
        var mediaBytes: Int
        var playlistBytes: Int
        var playlists: Int
        /// Since its last playlist request, or its last report (a P2P page).
        var secondsSinceSeen: Double
    }

    /// One client of one rendition (a client that plays both is two viewers).
    struct Key: Hashable, Sendable {
        var id: String
        var rendition: Rendition
    }

    struct Entry: Sendable {
        var labelled: Bool
        var lastSeen: Double
        var mediaBytes = 0
        var playlistBytes = 0
        var playlists = 0
    }

    /// A viewer's id, and whether it chose it (`viewer=`) or is known by its address.
    typealias Client = (id: String, labelled: Bool)

    static let expiry = 10.0
    /// Viewers kept per stream; clients beyond it are not counted (a flood of made-up viewer ids).
    static let maxViewersPerStream = 20_000

    let state = Mutex<[StreamKey: [Key: Entry]]>([:])
    let clock: @Sendable () -> Double

    init(clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) { self.clock = clock }

    /// The viewer a request is from: its `viewer` query parameter when it is 1-64 letters, digits, `-`, `_` or `.`;
    /// else its address and User-Agent.
    static func client(_ request: Request, address: String?) -> Client {
        if let v = request.uri.queryParameters["viewer"], !v.isEmpty, v.utf8.count <= 64,
           v.utf8.allSatisfy({ $0.isASCIILetterOrDigit || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") }) {
            return (String(v), true)
        }
        // Bytes, not characters: 80 characters may carry any number of combining marks.
        let agent = request.headers[.userAgent].map { String(decoding: $0.utf8.prefix(80), as: UTF8.self) } ?? "-"
        return ("\(address ?? "?") \(agent)", false)
    }

    /// A playlist of `rendition` served to `client`: it is (still) a viewer.
    func playlist(_ key: StreamKey, _ rendition: Rendition, client: Client, bytes: Int) {
        let now = clock()
        let k = Key(id: client.id, rendition: rendition)
        state.withLock { s in
            if var e = s[key]?[k] {
                e.lastSeen = now
                e.playlists += 1
                e.playlistBytes += bytes
                s[key]![k] = e
            } else if (s[key]?.count ?? 0) < Self.maxViewersPerStream {
                s[key, default: [:]][k] = Entry(labelled: client.labelled, lastSeen: now, playlistBytes: bytes, playlists: 1)
            }
        }
    }

    /// Media served to `client`: counted when it is a viewer (a client that fetches parts without ever loading a
    /// playlist is not one).
    func media(_ key: StreamKey, _ rendition: Rendition, client: Client, bytes: Int) {
        let k = Key(id: client.id, rendition: rendition)
        state.withLock { s in
            guard s[key]?[k] != nil else { return }
            s[key]![k]!.mediaBytes += bytes
        }
    }

    /// A P2P page reported (`POST /api/v1/p2p/reports`) as `id`: it is still a viewer even while it fetches nothing
    /// from the origin (peers feed it, or it is paused), so its entry and counts are kept. Only an entry it made by
    /// loading a playlist is kept; a report makes none.
    func reported(_ key: StreamKey, id: String) {
        let now = clock()
        let k = Key(id: id, rendition: .cmaf)
        state.withLock { s in
            if s[key]?[k] != nil { s[key]![k]!.lastSeen = now }
        }
    }

    /// Every stream's current viewers, after forgetting those not seen for ``expiry`` seconds.
    func snapshot() -> [StreamKey: [Viewer]] {
        let now = clock()
        return state.withLock { s in
            for (key, viewers) in s {
                let kept = viewers.filter { now - $0.value.lastSeen <= Self.expiry }
                s[key] = kept.isEmpty ? nil : kept
            }
            return s.mapValues { viewers in
                viewers.map { k, e in
                    Viewer(id: k.id, labelled: e.labelled, protocol: k.rendition, mediaBytes: e.mediaBytes, playlistBytes: e.playlistBytes,
                           playlists: e.playlists, secondsSinceSeen: ((now - e.lastSeen) * 1000).rounded() / 1000)
                }.sorted { ($0.id, $0.protocol.rawValue) < ($1.id, $1.protocol.rawValue) }
            }
        }
    }
}

extension UInt8 {
    var isASCIILetterOrDigit: Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(self) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(self)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self)
    }
}
