import Foundation
import Hummingbird
import Metrics
import NIOCore
import P2PTracker
import StreamHub
import Locks

/// What the origin served over HTTP, per stream, counted per response as it is handed to the server: the P2P
/// share is judged from this, not from what viewers say.
final class OriginCounter: Sendable {
    struct Bytes: Codable, Sendable, Equatable {
        /// Init sections, CMAF parts and segments, MPEG-TS segments.
        var media = 0
        var playlists = 0
        var mediaResponses = 0

        mutating func add(_ bytes: Int, playlist: Bool) {
            if playlist {
                playlists += bytes
            } else {
                media += bytes
                mediaResponses += 1
            }
        }
    }

    let counts = Mutex<[StreamKey: Bytes]>([:])
    /// Who watches over HLS, and what each viewer took.
    let audience = HLSAudience()
    /// `liveswarm_bytes_sent_total{protocol="hls"}` and `{protocol="ll-hls"}`, beside RTMP's and HTTP-FLV's.
    let sent: [HLSAudience.Rendition: Counter]

    init(factory: any MetricsFactory) {
        sent = [.ts: Counter(label: "liveswarm_bytes_sent_total", dimensions: [("protocol", HLSAudience.Rendition.ts.rawValue)], factory: factory),
                .cmaf: Counter(label: "liveswarm_bytes_sent_total", dimensions: [("protocol", HLSAudience.Rendition.cmaf.rawValue)], factory: factory)]
    }

    func snapshot() -> [StreamKey: Bytes] { counts.withLock { $0 } }

    /// A response body of `buffers`, counted for `key` (and for the viewer `client`) as it is handed to the server:
    /// one lock per response, and Hummingbird's own bodies, so a single buffer keeps its fast path (head, body and end
    /// in one write). A body that counted each buffer as it was written cost 5-16 % more server CPU per request in
    /// `bench-hls`. A client that leaves mid-response is counted as served in full: the origin's count errs high, so a
    /// P2P share judged from it errs low.
    func body(_ buffers: [ByteBuffer], for key: StreamKey, playlist: Bool, rendition: HLSAudience.Rendition,
              client: HLSAudience.Client) -> ResponseBody {
        let total = buffers.reduce(0) { $0 + $1.readableBytes }
        counts.withLock { $0[key, default: Bytes()].add(total, playlist: playlist) }
        sent[rendition]?.increment(by: total)
        if playlist {
            audience.playlist(key, rendition, client: client, bytes: total)
        } else {
            audience.media(key, rendition, client: client, bytes: total)
        }
        return buffers.count == 1 ? ResponseBody(byteBuffer: buffers[0]) : ResponseBody(contentsOf: buffers)
    }
}

/// What P2P viewers report every few seconds (`POST /api/v1/p2p/reports`), kept per stream and viewer. A viewer
/// not heard from for `expiry` seconds has left: its last counters move to the stream's totals of departed viewers.
final class P2PReports: Sendable {
    struct Report: Codable, Sendable, Equatable {
        var stream: String
        /// Chosen by the page (its tracker peer id in hex, or any id for a viewer with P2P off).
        var viewer: String
        var p2p: Bool
        /// Seconds behind the origin's clock; nil before the first frame.
        var delay: Double?
        var stalls: Int
        var stalledMs: Double
        var firstFrameMs: Double?
        /// Cumulative, since the page started playing.
        var originBytes: Double
        var peerBytes: Double
        var uploadedBytes: Double
        var neighbours: Int?
        /// Chunks that failed their hash check, and peers dropped for it.
        var badChunks: Int?
        var droppedPeers: Int?
    }

    struct Entry: Sendable {
        var report: Report
        var at: Double
    }

    struct Departed: Sendable {
        /// When a viewer of the stream last departed: the totals are forgotten an hour after, once nobody reports.
        var at = 0.0
        var viewers = 0
        var originBytes = 0.0
        var peerBytes = 0.0
        var stalls = 0
        var stalledMs = 0.0
    }

    struct State: Sendable {
        var viewers: [StreamKey: [String: Entry]] = [:]
        var departed: [StreamKey: Departed] = [:]
    }

    static let expiry = 10.0
    /// How long a stream's departed viewers' totals are kept once no viewer of it reports.
    static let departedExpiry = 3600.0
    /// The most a believable report says (more is made up, and would overflow the sums): a petabyte, an hour behind,
    /// a million stalls, eleven days stalled, a hundred thousand neighbours.
    static let maxBytes = 1e15, maxDelay = 3600.0, maxCount = 1_000_000, maxMilliseconds = 1e9
    /// Viewers per stream the figures keep; reports beyond it are refused (a flood of made-up viewer ids).
    static let maxViewersPerStream = 20_000

    let state = Mutex(State())
    let clock: @Sendable () -> Double

    init(clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) { self.clock = clock }

    enum Refusal: Error { case invalid(String), tooMany }

    func add(_ r: Report, key: StreamKey) throws(Refusal) {
        let numbers = [r.delay ?? 0, r.stalledMs, r.firstFrameMs ?? 0, r.originBytes, r.peerBytes, r.uploadedBytes]
        let counts = [r.stalls, r.neighbours ?? 0, r.badChunks ?? 0, r.droppedPeers ?? 0]
        guard numbers.allSatisfy({ $0.isFinite && $0 >= 0 }), counts.allSatisfy({ $0 >= 0 }) else {
            throw .invalid("numbers must be finite and not negative")
        }
        guard [r.originBytes, r.peerBytes, r.uploadedBytes].allSatisfy({ $0 <= Self.maxBytes }), (r.delay ?? 0) <= Self.maxDelay,
              r.stalledMs <= Self.maxMilliseconds, (r.firstFrameMs ?? 0) <= Self.maxMilliseconds, counts.allSatisfy({ $0 <= Self.maxCount }) else {
            throw .invalid("numbers beyond belief: at most 1e15 bytes, an hour of delay, 1e9 ms and a million of anything counted")
        }
        guard !r.viewer.isEmpty, r.viewer.utf8.count <= 64 else { throw .invalid("viewer must be 1 to 64 bytes") }
        let now = clock()
        try state.withLock { (s: inout State) throws(Refusal) in
            expire(&s, now: now)
            if s.viewers[key]?[r.viewer] == nil, (s.viewers[key]?.count ?? 0) >= Self.maxViewersPerStream { throw .tooMany }
            s.viewers[key, default: [:]][r.viewer] = Entry(report: r, at: now)
        }
    }

    func expire(_ s: inout State, now: Double) {
        for (key, viewers) in s.viewers {
            for (id, e) in viewers where now - e.at > Self.expiry {
                s.viewers[key]?.removeValue(forKey: id)
                var d = s.departed[key, default: Departed()]
                d.at = now
                d.viewers += 1
                d.originBytes += e.report.originBytes
                d.peerBytes += e.report.peerBytes
                d.stalls += e.report.stalls
                d.stalledMs += e.report.stalledMs
                s.departed[key] = d
            }
            if s.viewers[key]?.isEmpty == true { s.viewers[key] = nil }
        }
        for (key, d) in s.departed where s.viewers[key] == nil && now - d.at > Self.departedExpiry { s.departed[key] = nil }
    }

    func snapshot() -> (viewers: [StreamKey: [Report]], departed: [StreamKey: Departed]) {
        let now = clock()
        return state.withLock { s in
            expire(&s, now: now)
            return (s.viewers.mapValues { $0.values.map(\.report) }, s.departed)
        }
    }
}

/// `GET /api/v1/p2p`: per stream, the origin's own byte counts beside what its viewers report.
struct P2PSummary: ResponseEncodable {
    struct Stream: Codable {
        var stream: String
        /// Viewers that reported in the last 10 s, and how many of them have P2P on.
        var viewers: Int
        var p2pViewers: Int
        /// Counted by the origin as it wrote them.
        var originBytes: OriginCounter.Bytes
        /// Reported by viewers (live and departed): bytes they received from peers and from the origin.
        var peerBytes: Double
        var reportedOriginBytes: Double
        /// peerBytes / (peerBytes + the origin's media bytes): the share of media that came from peers.
        var p2pShare: Double?
        var medianDelay: Double?
        var stalls: Int
        var stalledMs: Double
        var departedViewers: Int
        /// The tracker's swarm of the stream: peers connected to it now.
        var swarmPeers: Int?
        /// False while the operator has P2P switched off for the stream.
        var p2p: Bool
    }

    var streams: [Stream]
    /// The tracker's counters (connections, swarms, peers, offers and answers relayed, refusals, closes).
    var tracker: Tracker.Statistics

    init(origin: OriginCounter, reports: P2PReports, tracker: TrackerEndpoint) {
        let served = origin.snapshot()
        let (viewers, departed) = reports.snapshot()
        let (swarms, stats) = tracker.snapshot()
        let off = tracker.p2pOff
        var swarmPeers: [String: Int] = [:]
        for s in swarms { swarmPeers[s.stream, default: 0] += s.peers }
        let keys = Set(served.keys).union(viewers.keys).union(departed.keys).union(off.compactMap(StreamKey.init(name:)))
        streams = keys.sorted { "\($0)" < "\($1)" }.map { key in
            let live = viewers[key] ?? []
            let gone = departed[key] ?? .init()
            let bytes = served[key] ?? .init()
            let peer = live.reduce(0) { $0 + $1.peerBytes } + gone.peerBytes
            let delays = live.compactMap(\.delay).sorted()
            let median: Double? = delays.isEmpty ? nil
                : delays.count % 2 == 1 ? delays[delays.count / 2] : (delays[delays.count / 2 - 1] + delays[delays.count / 2]) / 2
            let total = peer + Double(bytes.media)
            return Stream(stream: "\(key)", viewers: live.count, p2pViewers: live.filter(\.p2p).count, originBytes: bytes,
                          peerBytes: peer, reportedOriginBytes: live.reduce(0) { $0 + $1.originBytes } + gone.originBytes,
                          p2pShare: total > 0 ? peer / total : nil, medianDelay: median,
                          stalls: live.reduce(0) { $0 + $1.stalls } + gone.stalls,
                          stalledMs: live.reduce(0) { $0 + $1.stalledMs } + gone.stalledMs,
                          departedViewers: gone.viewers, swarmPeers: swarmPeers["\(key)"], p2p: !off.contains("\(key)"))
        }
        self.tracker = stats
    }
}
