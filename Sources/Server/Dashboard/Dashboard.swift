import Foundation
import Hummingbird
import ICE
import Logging
import Metrics
import NIOCore
import SFU
import ServiceLifecycle
import Signaling
import StreamHub
import Locks

/// Viewers by how they watch: one stream's, or the server's.
struct Audience: Codable, Sendable, Equatable {
    var rtmp = 0
    var httpFLV = 0
    var hls = 0
    var llHLS = 0
    /// WebRTC viewers (WHEP), of RTMP and of WHIP streams.
    var whep = 0
    /// Viewers on the P2P page with P2P on (the switch off included), reporting in the last 10 s.
    var p2p = 0

    enum CodingKeys: String, CodingKey { case rtmp, httpFLV = "http-flv", hls, llHLS = "ll-hls", whep, p2p }

    static let protocols = ["rtmp", "http-flv", "hls", "ll-hls", "whep", "p2p"]
    var values: [Int] { [rtmp, httpFLV, hls, llHLS, whep, p2p] }
    var total: Int { values.reduce(0, +) }

    static func + (a: Audience, b: Audience) -> Audience {
        Audience(rtmp: a.rtmp + b.rtmp, httpFLV: a.httpFLV + b.httpFLV, hls: a.hls + b.hls, llHLS: a.llHLS + b.llHLS,
                 whep: a.whep + b.whep, p2p: a.p2p + b.p2p)
    }
}

/// The operator's view of the whole server (`/dashboard/`): every stream, room and relay now, and the last hour of
/// figures a second, kept in rings allocated once (``SeriesRing``) and pushed to open pages as server-sent events.
///
/// Every second the sampler reads what the server already keeps (the stream hub, the HLS audience, the P2P
/// reports, the rooms, TURN's counters, the byte counters behind `/metrics`), turns totals into rates, appends a row
/// to the server's ring and to each stream's, records the Prometheus gauges, and sends the frame to every page.
final class Dashboard: Sendable {
    /// What one second looks like: the tables of the page.
    struct Frame: Codable, Sendable {
        struct Server: Codable, Sendable {
            var uptimeSeconds: Double
            /// Percent of one core over the last second (200 is two cores busy).
            var cpuPercent: Double?
            var memoryBytes: Int?
            var cores: Int
        }

        struct P2P: Codable, Sendable {
            /// False while the operator has switched P2P off for the stream.
            var enabled: Bool
            /// Peer bytes over peer and origin media bytes, the last 10 s.
            var share: Double?
            var medianDelay: Double?
            var stalls: Int
            var peerBytes: Double
            var originMediaBytes: Int
            var swarmPeers: Int?
        }

        struct Stream: Codable, Sendable {
            var stream: String
            var live: Bool
            /// rtmp, whip...
            var publisher: String?
            var publisherPeer: String?
            var videoCodec: String?
            var audioCodec: String?
            var width: Int?
            var height: Int?
            var frameRate: Double?
            /// Incoming bits a second (the last 5 s).
            var bitrate: Int
            var uptimeSeconds: Double
            var viewers: Audience
            var p2p: P2P
        }

        struct Room: Codable, Sendable {
            struct Participant: Codable, Sendable {
                var name: String
                var tracks: Int
                /// False while its seat is held for a resume.
                var connected: Bool
            }
            var name: String
            var participants: [Participant]
            var tracks: Int
        }

        struct TURN: Codable, Sendable {
            var allocations: Int
            var relayedBytes: Int
            var relayedPackets: Int
            var bytesPerSecond: Double
        }

        var time: Double
        var server: Server
        var viewers: Audience
        /// Bytes a second the origin sent over the last second, by protocol (`Dashboard.egressColumns`).
        var egress: [String: Double]
        /// Bytes a second viewers reported receiving from each other (over the last 10 s).
        var peerBytesPerSecond: Double
        var p2pShare: Double?
        var medianDelay: Double?
        var stalls: Int
        var streams: [Stream]
        var rooms: [Room]
        /// Nil with TURN off.
        var turn: TURN?
    }

    /// The columns of the server's rows and of each stream's. Rates are bytes a second (ingest: bits a second),
    /// shares 0-1, delays seconds, CPU percent of a core, memory bytes.
    static let egressColumns = ["rtmp", "http-flv", "hls", "ll-hls", "whep", "rooms", "turn"]
    static let serverColumns = egressColumns.map { "egress.\($0)" } + ["peers"] + Audience.protocols.map { "viewers.\($0)" }
        + ["participants", "allocations", "p2pShare", "medianDelay", "stalls", "cpu", "memory"]
    static let streamColumns = Audience.protocols.map { "viewers.\($0)" } + ["ingest", "origin", "peers", "p2pShare", "medianDelay", "stalls"]

    /// An hour of rows a second.
    static let capacity = 3600
    /// Streams with rows of their own at once; when full, the longest-ended one gives its ring up.
    static let maxStreamSeries = 32
    /// Pages following the events at once, and from one address.
    static let maxFollowers = 64
    static let maxFollowersPerAddress = 8
    /// How long a stream that ended and has no viewers left stays in the table.
    static let endedRowSeconds = 3600.0
    /// The window of the P2P share.
    static let shareWindow = 10

    struct Inputs: Sendable {
        var hub: StreamHub
        var webRTC: RouterRegistry?
        var rooms: RoomEndpoint?
        /// Allocations now and TURN's counters; nil with TURN off.
        var turn: @Sendable () -> (allocations: Int, counters: Allocations.Counters)?
        var origin: OriginCounter
        var reports: P2PReports
        var tracker: TrackerEndpoint
        /// Readable byte counters (the RTMP and HTTP-FLV ones, the media port's); nil leaves those rates out.
        var counters: ReadableMetricsFactory?
    }

    /// Totals at the last sample, to turn into rates.
    struct Totals {
        var egress: [String: Int] = [:]
        var cpuSeconds: Double?
        var peer: [String: Double] = [:]
        var media: [String: Int] = [:]
        var stalls: [String: Int] = [:]
    }

    struct State {
        var server = SeriesRing(columns: Dashboard.serverColumns.count, capacity: Dashboard.capacity)
        var streams: [String: SeriesRing] = [:]
        /// When each stream with a ring was last live (the longest-ended one gives its ring up first).
        var lastLive: [String: Double] = [:]
        /// When each stream was last live, watched or shared: an ended one stays in the table for ``endedRowSeconds``.
        var lastActive: [String: Double] = [:]
        var totals = Totals()
        /// The last sample, on the monotonic clock (rates must not jump when the wall clock is set).
        var at: ContinuousClock.Instant?
        /// Per stream (and "" for the server): (peer, origin media) bytes of each of the last seconds.
        var window: [String: [(peer: Double, media: Double)]] = [:]
        var followers: [Int: (address: String, continuation: AsyncStream<ByteBuffer>.Continuation)] = [:]
        var nextFollower = 0
        /// Set at shutdown: no new page follows (one would hold the HTTP server's shutdown up).
        var closed = false
        var last: Frame?
    }

    let inputs: Inputs
    let state = Mutex(State())
    let started = Date().timeIntervalSince1970
    let gauges: Gauges

    struct Gauges: Sendable {
        let viewers: [String: Gauge]
        let peerBytes: Counter
        let stalls: Counter
        let share: Gauge
        let delay: Gauge
        let cpu: FloatingPointCounter
        let memory: Gauge
        let streams: Gauge

        init(_ f: any MetricsFactory) {
            viewers = Dictionary(uniqueKeysWithValues: Audience.protocols.map {
                ($0, Gauge(label: "liveswarm_viewers", dimensions: [("protocol", $0)], factory: f))
            })
            peerBytes = Counter(label: "liveswarm_p2p_peer_bytes_total", factory: f)
            stalls = Counter(label: "liveswarm_p2p_stalls_total", factory: f)
            share = Gauge(label: "liveswarm_p2p_share", factory: f)
            delay = Gauge(label: "liveswarm_p2p_median_delay_seconds", factory: f)
            cpu = FloatingPointCounter(label: "process_cpu_seconds_total", factory: f)
            memory = Gauge(label: "process_resident_memory_bytes", factory: f)
            streams = Gauge(label: "liveswarm_streams", factory: f)
        }
    }

    init(inputs: Inputs, metricsFactory: any MetricsFactory) {
        self.inputs = inputs
        self.gauges = Gauges(metricsFactory)
    }

    // MARK: - What is on now

    /// Every stream's viewers by protocol, live streams (hub and WHIP) and streams that only have P2P figures.
    func audiences() -> (streams: [String: Audience], hub: [StreamSnapshot], whip: [RouterRegistry.Snapshot],
                         p2p: (viewers: [StreamKey: [P2PReports.Report]], departed: [StreamKey: P2PReports.Departed]),
                         hls: [StreamKey: [HLSAudience.Viewer]]) {
        let hub = inputs.hub.snapshot()
        let whip = inputs.webRTC?.snapshot() ?? []
        let reports = inputs.reports.snapshot()
        let hls = inputs.origin.audience.snapshot()
        var out: [String: Audience] = [:]
        for s in hub where s.published || s.viewerCount > 0 {
            var a = out["\(s.app)/\(s.stream)", default: Audience()]
            a.rtmp += s.viewers["rtmp"] ?? 0
            a.httpFLV += s.viewers["http-flv"] ?? 0
            a.whep += s.viewers["webrtc"] ?? 0
            out["\(s.app)/\(s.stream)"] = a
        }
        for s in whip { out[s.stream, default: Audience()].whep += s.viewers }
        var p2pIDs: [StreamKey: Set<String>] = [:]
        for (key, viewers) in reports.viewers {
            let ids = Set(viewers.filter(\.p2p).map(\.viewer))
            p2pIDs[key] = ids
            out["\(key)", default: Audience()].p2p += ids.count
        }
        for (key, viewers) in hls {
            let p2p = p2pIDs[key] ?? []
            for v in viewers where !(v.labelled && p2p.contains(v.id)) {
                switch v.protocol {
                case .ts: out["\(key)", default: Audience()].hls += 1
                case .cmaf: out["\(key)", default: Audience()].llHLS += 1
                }
            }
        }
        return (out, hub, whip, reports, hls)
    }

    /// Records `liveswarm_viewers{protocol}` and `liveswarm_streams` (for a scrape, and every second).
    func recordViewerGauges(_ streams: [String: Audience], live: Int) {
        let total = streams.values.reduce(Audience(), +)
        for (name, value) in zip(Audience.protocols, total.values) { gauges.viewers[name]?.record(value) }
        gauges.streams.record(live)
    }

    func recordViewerGauges() {
        let a = audiences()
        recordViewerGauges(a.streams, live: a.hub.filter(\.published).count + a.whip.count)
    }

    // MARK: - Sampling

    /// Takes one second's sample: rows into the rings, gauges recorded, the frame sent to every follower.
    func sample(now: Double = Date().timeIntervalSince1970) {
        let instant = ContinuousClock.now
        let (audience, hub, whip, reports, _) = audiences()
        var hubByName: [String: StreamSnapshot] = [:]
        for s in hub where s.published { hubByName["\(s.app)/\(s.stream)"] = s }
        let whipByName = Dictionary(whip.map { ($0.stream, $0) }, uniquingKeysWith: { a, _ in a })
        recordViewerGauges(audience, live: hub.filter(\.published).count + whip.count)
        let served = inputs.origin.snapshot()
        let off = inputs.tracker.p2pOff
        let (swarms, _) = inputs.tracker.snapshot()
        var swarmPeers: [String: Int] = [:]
        for s in swarms { swarmPeers[s.stream, default: 0] += s.peers }
        let turn = inputs.turn()
        let process = ProcessFigures.current()
        let rooms: [Frame.Room] = (inputs.rooms?.summaries ?? []).map { r in
            let members = inputs.rooms?.members(of: r.name) ?? []
            return Frame.Room(name: r.name, participants: members.map { .init(name: $0.name, tracks: $0.tracks.count, connected: $0.connected) },
                              tracks: r.tracks)
        }
        var egressTotals: [String: Int] = [:]
        if let c = inputs.counters {
            for p in ["rtmp", "http-flv", "hls", "ll-hls"] { egressTotals[p] = c.total("liveswarm_bytes_sent_total", [("protocol", p)]) }
            egressTotals["whep"] = c.total("liveswarm_rtc_bytes_sent_total", [("use", "whep")])
                + c.total("liveswarm_rtc_bytes_sent_total", [("use", "whip")])
            egressTotals["rooms"] = c.total("liveswarm_rtc_bytes_sent_total", [("use", "rooms")])
        }
        if let turn { egressTotals["turn"] = turn.counters.relayedBytes }

        // Per stream: P2P figures from the reports and the origin's own count.
        let names = Set(audience.keys).union(hubByName.keys).union(whipByName.keys)
        var peerTotals: [String: Double] = [:], mediaTotals: [String: Int] = [:], stallTotals: [String: Int] = [:]
        var delays: [String: [Double]] = [:]
        for key in Set(reports.viewers.keys).union(reports.departed.keys) {
            let live = reports.viewers[key] ?? [], gone = reports.departed[key] ?? .init()
            peerTotals["\(key)"] = live.reduce(0) { $0 + $1.peerBytes } + gone.peerBytes
            stallTotals["\(key)"] = live.reduce(0) { $0 + $1.stalls } + gone.stalls
            delays["\(key)"] = live.compactMap(\.delay)
        }
        for (key, bytes) in served { mediaTotals["\(key)"] = bytes.media }

        let frame: Frame = state.withLock { s in
            let elapsed = s.at.map { max(0.001, (instant - $0) / .seconds(1)) } ?? 1
            func rate(_ new: Int?, _ old: Int?) -> Double? {
                guard let new, let old else { return nil }
                return Double(max(0, new - old)) / elapsed
            }
            var egress: [String: Double] = [:]
            for name in Self.egressColumns { if let r = rate(egressTotals[name], s.totals.egress[name]) { egress[name] = r } }
            let cpu = process.flatMap { p in s.totals.cpuSeconds.map { max(0, p.cpuSeconds - $0) / elapsed * 100 } }
            if let p = process, let before = s.totals.cpuSeconds, p.cpuSeconds > before { gauges.cpu.increment(by: p.cpuSeconds - before) }
            if let p = process { gauges.memory.record(p.residentBytes) }

            // Every stream live now holding a ring is marked first, so that a new one takes the ring of a stream that
            // is not live (and only such a ring).
            for name in hubByName.keys where s.streams[name] != nil { s.lastLive[name] = now }
            for name in whipByName.keys where s.streams[name] != nil { s.lastLive[name] = now }
            var streams: [Frame.Stream] = []
            var serverPeer = 0.0, serverMedia = 0.0, allDelays: [Double] = [], stallsNow = 0, stallsNew = 0, peerNew = 0.0
            for name in names.union(peerTotals.keys).sorted() {
                let peer = max(0, (peerTotals[name] ?? 0) - (s.totals.peer[name] ?? peerTotals[name] ?? 0))
                let media = Double(max(0, (mediaTotals[name] ?? 0) - (s.totals.media[name] ?? mediaTotals[name] ?? 0)))
                let newStalls = max(0, (stallTotals[name] ?? 0) - (s.totals.stalls[name] ?? stallTotals[name] ?? 0))
                serverPeer += peer
                serverMedia += media
                peerNew += peer
                stallsNew += newStalls
                stallsNow += stallTotals[name] ?? 0
                var window = s.window[name, default: []]
                window.append((peer, media))
                while window.count > Self.shareWindow { window.removeFirst() }
                s.window[name] = window
                let wp = window.reduce(0) { $0 + $1.peer }, wm = window.reduce(0) { $0 + $1.media }
                let share: Double? = wp + wm > 0 ? wp / (wp + wm) : nil
                let d = delays[name] ?? []
                allDelays += d
                let snap = hubByName[name]
                let whipStream = whipByName[name]
                let viewers = audience[name] ?? Audience()
                let row = Frame.Stream(
                    stream: name, live: snap != nil || whipStream != nil,
                    publisher: snap?.publisherProtocol ?? (whipStream != nil ? "whip" : nil), publisherPeer: snap?.publisherPeer,
                    videoCodec: snap?.info.videoCodecString ?? snap?.info.videoCodec ?? whipStream.flatMap { Self.codec("video", $0.tracks) },
                    audioCodec: snap?.info.audioCodecString ?? snap?.info.audioCodec ?? whipStream.flatMap { Self.codec("audio", $0.tracks) },
                    width: snap?.info.width, height: snap?.info.height, frameRate: snap?.info.frameRate,
                    bitrate: snap?.bitrate ?? 0, uptimeSeconds: snap?.uptimeSeconds ?? 0, viewers: viewers,
                    p2p: .init(enabled: !off.contains(name), share: share, medianDelay: Self.median(d), stalls: stallTotals[name] ?? 0,
                               peerBytes: peerTotals[name] ?? 0, originMediaBytes: mediaTotals[name] ?? 0, swarmPeers: swarmPeers[name]))
                if row.live || viewers.total > 0 || peer > 0 || media > 0 { s.lastActive[name] = now }
                if now - (s.lastActive[name] ?? -.infinity) <= Self.endedRowSeconds { streams.append(row) }
                // The stream's own ring: made when it first has something to show, while there is room.
                if s.streams[name] == nil, row.live || viewers.total > 0 {
                    if s.streams.count >= Self.maxStreamSeries,
                       let oldest = s.lastLive.filter({ $0.value < now }).min(by: { $0.value < $1.value })?.key {
                        s.streams[oldest] = nil
                        s.lastLive[oldest] = nil
                    }
                    if s.streams.count < Self.maxStreamSeries {
                        s.streams[name] = SeriesRing(columns: Self.streamColumns.count, capacity: Self.capacity)
                        s.lastLive[name] = now
                    }
                }
                let values: [Double?] = viewers.values.map(Double.init) + [Double(row.bitrate), media / elapsed, peer / elapsed, share,
                                                                             row.p2p.medianDelay, Double(newStalls)]
                s.streams[name]?.append(time: now, values.map { $0.map(Float.init) ?? .nan })
            }
            var window = s.window["", default: []]
            window.append((serverPeer, serverMedia))
            while window.count > Self.shareWindow { window.removeFirst() }
            s.window[""] = window
            // Streams gone from every source forget their windows (their rings stay until a new stream needs one).
            for key in s.window.keys where key != "" && !names.contains(key) && peerTotals[key] == nil { s.window[key] = nil }
            for (key, at) in s.lastActive where now - at > Self.endedRowSeconds { s.lastActive[key] = nil }
            let wp = window.reduce(0) { $0 + $1.peer }, wm = window.reduce(0) { $0 + $1.media }
            let share: Double? = wp + wm > 0 ? wp / (wp + wm) : nil
            let total = audience.values.reduce(Audience(), +)
            let participants = rooms.reduce(0) { $0 + $1.participants.count }
            let turnFrame = turn.map { t in
                Frame.TURN(allocations: t.allocations, relayedBytes: t.counters.relayedBytes, relayedPackets: t.counters.relayedPackets,
                           bytesPerSecond: egress["turn"] ?? 0)
            }
            let delay = Self.median(allDelays)
            let frame = Frame(
                time: now,
                server: .init(uptimeSeconds: now - started, cpuPercent: cpu, memoryBytes: process?.residentBytes,
                              cores: ProcessInfo.processInfo.activeProcessorCount),
                viewers: total, egress: egress, peerBytesPerSecond: wp / Double(max(1, window.count)), p2pShare: share,
                medianDelay: delay, stalls: stallsNow, streams: streams, rooms: rooms, turn: turnFrame)
            let row: [Double?] = Self.egressColumns.map { egress[$0] } + [peerNew / elapsed] + total.values.map(Double.init)
                + [Double(participants), turn.map { Double($0.allocations) }, share, delay, Double(stallsNew), cpu,
                   process.map { Double($0.residentBytes) }]
            s.server.append(time: now, row.map { $0.map(Float.init) ?? .nan })

            // Reports are bounded (P2PReports.maxBytes), so these fit; the clamp keeps a conversion from ever trapping.
            gauges.peerBytes.increment(by: Int64(min(peerNew, 1e18)))
            gauges.stalls.increment(by: Int64(min(stallsNew, Int(Int64.max / 2))))
            gauges.share.record(share ?? 0)
            gauges.delay.record(delay ?? 0)

            s.totals = Totals(egress: egressTotals, cpuSeconds: process?.cpuSeconds, peer: peerTotals, media: mediaTotals, stalls: stallTotals)
            s.at = instant
            s.last = frame
            return frame
        }
        publish(frame)
    }

    /// A WHIP stream's codec of one kind, from its tracks ("video H264/90000" gives "H264/90000").
    static func codec(_ kind: String, _ tracks: [String]) -> String? {
        tracks.first { $0.hasPrefix(kind + " ") }.map { String($0.dropFirst(kind.count + 1)) }
    }

    static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let v = values.sorted()
        return v.count % 2 == 1 ? v[v.count / 2] : (v[v.count / 2 - 1] + v[v.count / 2]) / 2
    }

    // MARK: - History and events

    /// Rows of one ring, as the page reads them: times, and one array per row (null for a missing value).
    struct Series: Codable, Sendable {
        var time: [Double]
        var rows: [[Float?]]

        init(_ ring: SeriesRing, last: Int) {
            let rows = ring.rows(last: last)
            time = rows.map(\.time)
            self.rows = rows.map { $0.values.map { $0.isFinite ? $0 : nil } }
        }
    }

    /// `GET /api/v1/dashboard`, and the first event of `/api/v1/dashboard/events`.
    struct History: ResponseEncodable, Sendable {
        struct Columns: Codable, Sendable { var server: [String]; var stream: [String] }
        var columns: Columns
        var frame: Frame?
        var server: Series
        var streams: [String: Series]
    }

    /// One second, as sent to the pages: the frame and the rows just added.
    struct Tick: Codable, Sendable {
        var frame: Frame
        var server: [Float?]
        var streams: [String: [Float?]]
    }

    func history(seconds: Int) -> History {
        let n = max(1, min(Self.capacity, seconds))
        // The rings are copied under the lock (copy on write: nothing is copied unless a sample comes meanwhile), and
        // read outside it.
        let (last, server, streams) = state.withLock { ($0.last, $0.server, $0.streams) }
        return History(columns: .init(server: Self.serverColumns, stream: Self.streamColumns), frame: last,
                       server: Series(server, last: n), streams: streams.mapValues { Series($0, last: n) })
    }

    func publish(_ frame: Frame) {
        let followers: [AsyncStream<ByteBuffer>.Continuation] = state.withLock { s in
            guard !s.followers.isEmpty else { return [] }
            return s.followers.values.map(\.continuation)
        }
        guard !followers.isEmpty else { return }
        let rows: (server: [Float?], streams: [String: [Float?]]) = state.withLock { s in
            func row(_ ring: SeriesRing) -> [Float?] { ring.last.map { $0.values.map { $0.isFinite ? $0 : nil } } ?? [] }
            return (row(s.server), s.streams.filter { $0.value.last?.time == frame.time }.mapValues(row))
        }
        guard let event = Self.event("tick", Tick(frame: frame, server: rows.server, streams: rows.streams)) else { return }
        // A page that let 30 ticks pile up is not reading: its stream ends, and its place is free again.
        for f in followers { if case .dropped = f.yield(event) { f.finish() } }
    }

    /// An SSE event (`event:` and one `data:` line of JSON).
    static func event(_ name: String, _ value: some Encodable) -> ByteBuffer? {
        guard let json = try? JSONEncoder().encode(value) else { return nil }
        var buffer = ByteBuffer()
        buffer.writeString("event: \(name)\ndata: ")
        buffer.writeBytes(json)
        buffer.writeString("\n\n")
        return buffer
    }

    /// A page's event stream: the history first, then a tick a second. Nil when ``maxFollowers`` pages follow,
    /// ``maxFollowersPerAddress`` from `address`, or the server is shutting down. A page that stops reading has its
    /// stream ended once 30 ticks wait.
    func follow(seconds: Int, address: String) -> AsyncStream<ByteBuffer>? {
        let (stream, continuation) = AsyncStream<ByteBuffer>.makeStream(bufferingPolicy: .bufferingOldest(30))
        let id: Int? = state.withLock { s in
            guard !s.closed, s.followers.count < Self.maxFollowers,
                  s.followers.values.filter({ $0.address == address }).count < Self.maxFollowersPerAddress else { return nil }
            s.nextFollower += 1
            s.followers[s.nextFollower] = (address, continuation)
            return s.nextFollower
        }
        guard let id else { return nil }
        continuation.onTermination = { [weak self] _ in _ = self?.state.withLock { $0.followers.removeValue(forKey: id) } }
        if let first = Self.event("history", history(seconds: seconds)) { continuation.yield(first) }
        return stream
    }

    /// Ends every event stream (at shutdown, so that the HTTP server need not wait for them).
    func closeAll() {
        let all = state.withLock { s in
            defer { s.followers.removeAll() }
            s.closed = true
            return s.followers.values.map(\.continuation)
        }
        for f in all { f.finish() }
    }

    // MARK: - Routes

    func add(to router: Hummingbird.Router<HTTPContext>) {
        router.get("/api/v1/dashboard") { request, _ in
            self.history(seconds: Self.seconds(request))
        }
        router.get("/api/v1/dashboard/events") { request, context -> Response in
            guard let stream = self.follow(seconds: Self.seconds(request), address: context.remoteAddress?.ipAddress ?? "?") else {
                throw HTTPError(.serviceUnavailable, message: "the dashboard has its \(Self.maxFollowers) pages following, "
                                + "\(Self.maxFollowersPerAddress) from this address, or the server is stopping")
            }
            var headers = HTTPFields()
            headers[.contentType] = "text/event-stream"
            headers[.cacheControl] = "no-cache"
            return Response(status: .ok, headers: headers, body: ResponseBody(asyncSequence: stream))
        }
        // Chart.js for the page, from Debian's libjs-chart.js (never a CDN).
        router.get("/javascript/chart.js/:file") { _, context -> Response in
            let file = try context.parameters.require("file")
            guard ["chart.min.js", "chart.js"].contains(file) else { throw HTTPError(.notFound) }
            let path = "\(Self.chartJSFolder)/\(file)"
            guard let data = FileManager.default.contents(atPath: path) else {
                throw HTTPError(.notFound, message: "Chart.js is not installed (\(path)): apt install libjs-chart.js")
            }
            var headers = HTTPFields()
            headers[.contentType] = "text/javascript; charset=utf-8"
            headers[.cacheControl] = "public, max-age=3600"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
    }

    static let chartJSFolder = "/usr/share/javascript/chart.js"

    /// `?seconds=N` of history (default 600, at most an hour).
    static func seconds(_ request: Request) -> Int {
        request.uri.queryParameters["seconds"].flatMap { Int($0) }.map { max(1, min(capacity, $0)) } ?? 600
    }
}

/// Takes the dashboard's sample once a second; at shutdown, ends the pages' event streams.
struct DashboardSampler: Service {
    let dashboard: Dashboard

    func run() async throws {
        await withTaskCancellationOrGracefulShutdownHandler {
            let clock = ContinuousClock()
            var next = clock.now
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                dashboard.sample()
                next = next.advanced(by: .seconds(1))
                if next < clock.now { next = clock.now.advanced(by: .seconds(1)) }
                try? await Task.sleep(until: next, clock: clock)
            }
        } onCancelOrGracefulShutdown: {
            dashboard.closeAll()
        }
    }
}
