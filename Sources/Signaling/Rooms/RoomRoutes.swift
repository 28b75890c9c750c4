import Foundation
import HTTPTypes
import Hummingbird
import Metrics
import SFU

/// The rooms' operator API: `GET /api/v1/rooms`, `GET /api/v1/rooms/NAME`, `GET` and `PUT
/// /api/v1/rooms/NAME/broadcast`, and `DELETE /api/v1/rooms/NAME/participants/ID`; the writes need the operator
/// token (``OperatorAuthentication``).
public struct RoomRoutes: Sendable {
    public let endpoint: RoomEndpoint
    let operators: OperatorAuthentication

    public init(endpoint: RoomEndpoint, operators: OperatorAuthentication) {
        (self.endpoint, self.operators) = (endpoint, operators)
    }

    public func add<Context: RequestContext>(to router: Hummingbird.Router<Context>) {
        router.get("/api/v1/rooms") { _, _ in
            let c = endpoint.counters
            return RoomList(rooms: endpoint.summaries, counters: .init(resumes: c.resumes, expired: c.expired, replaced: c.replaced,
                                                                      iceRestarts: endpoint.forwarder.iceRestarts,
                                                                      icePairSwitches: endpoint.forwarder.icePairSwitches))
        }
        router.get("/api/v1/rooms/:room") { request, context in
            // Participants' names and identities.
            try operators.checkWhenSet(request)
            let room = try context.parameters.require("room")
            guard let members = endpoint.members(of: room) else { throw HTTPError(.notFound, message: "no room \(room)") }
            let figures = endpoint.forwarder.figures(room: room)
            let hub = endpoint.forwarder.hubFigures(room: room)
            return RoomDetail(name: room, videoCodec: endpoint.configuration.videoCodec, broadcast: endpoint.forwarder.isBroadcast(room: room),
                              participants: members.map { p in
                let f = figures[p.id]
                return RoomDetail.Participant(
                    id: p.id, name: p.name, identity: p.identity, canPublish: p.canPublish, connected: p.connected,
                    hubStream: hub[p.id] != nil ? RoomForwarder.hubKey(room: room, participant: p.id)?.description : nil, hub: hub[p.id],
                    tracks: p.tracks.map { t in
                        let m = f?.publishing.first { $0.id == t.id }
                        return RoomDetail.Track(id: t.id, kind: t.kind, source: t.source, muted: t.muted, codec: m?.codec, packetsReceived: m?.packetsReceived ?? 0,
                                                paddingReceived: m?.paddingReceived ?? 0, packetsLost: m?.packetsLost ?? 0, bitrate: m?.bitrate ?? 0, subscribers: m?.subscribers ?? 0)
                    },
                    receiving: f?.receiving ?? [])
            })
        }
        // A meeting broadcast: the room's participants become hub streams `room-ROOM/PARTICIPANT` (HTTP-FLV, HLS,
        // LL-HLS, RTMP, P2P), now and as they publish, until it is turned off. The room need not exist yet.
        router.put("/api/v1/rooms/:room/broadcast") { request, context -> BroadcastSwitch in
            try operators.check(request)
            let room = try context.parameters.require("room")
            let body = try await request.body.collect(upTo: 4096)
            guard let wanted = try? JSONDecoder().decode(BroadcastSwitch.self, from: Data(buffer: body)) else {
                throw HTTPError(.badRequest, message: #"send {"enabled": true} or {"enabled": false}"#)
            }
            do throws(RoomMediaError) {
                let streams = try endpoint.forwarder.setBroadcast(room: room, enabled: wanted.enabled)
                return BroadcastSwitch(room: room, enabled: wanted.enabled, streams: streams.map(\.description))
            } catch {
                throw HTTPError(.conflict, message: error.description)
            }
        }
        router.get("/api/v1/rooms/:room/broadcast") { _, context -> BroadcastSwitch in
            let room = try context.parameters.require("room")
            return BroadcastSwitch(room: room, enabled: endpoint.forwarder.isBroadcast(room: room),
                                   streams: endpoint.forwarder.hubStreams(room: room).map(\.description))
        }
        router.delete("/api/v1/rooms/:room/participants/:participant") { request, context -> HTTPResponse.Status in
            try operators.check(request)
            let room = try context.parameters.require("room"), participant = try context.parameters.require("participant")
            guard endpoint.remove(room: room, participant: participant) else {
                throw HTTPError(.notFound, message: "no participant \(participant) in room \(room)")
            }
            return .noContent
        }
    }

    /// Totals for `/metrics`, with no per-room or per-participant labels (they would grow without bound).
    public func recordMetrics(factory: any MetricsFactory) {
        let rooms = endpoint.summaries
        Gauge(label: "liveswarm_rooms", factory: factory).record(rooms.count)
        Gauge(label: "liveswarm_room_participants", factory: factory).record(rooms.reduce(0) { $0 + $1.participants })
        Gauge(label: "liveswarm_room_tracks", factory: factory).record(endpoint.forwarder.trackCount)
        // Counts since start, read from the rooms' state at scrape time (ICE restarts are the media port's
        // liveswarm_ice_restarts_total).
        let c = endpoint.counters
        Gauge(label: "liveswarm_room_resumes", factory: factory).record(c.resumes)
        Gauge(label: "liveswarm_room_seats_expired", factory: factory).record(c.expired)
    }
}

/// Who may use the operator routes that change state: `Authorization: Bearer TOKEN` with the server's
/// `--api-token`. Without a configured token those routes are refused outright (403): an operator API open to
/// anyone by default is how servers get taken over.
public struct OperatorAuthentication: Sendable {
    let token: String?

    public init(token: String?) { self.token = token }

    /// The token of an `Authorization: Bearer TOKEN` header, or nil without one.
    static func bearerToken(_ request: Request) -> String? {
        let header = request.headers[.authorization] ?? ""
        return header.lowercased().hasPrefix("bearer ") ? String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces) : nil
    }

    /// Whether the server has an API token.
    public var isSet: Bool { token.map { !$0.isEmpty } ?? false }

    /// For read routes that show users or client addresses: with an API token set, the request must carry it
    /// (401 without, or with a wrong one); without one they stay open, as before the token existed.
    public func checkWhenSet(_ request: Request) throws {
        if isSet { try check(request) }
    }

    /// Whether the request may see users and client addresses: no API token set, or the right one given.
    public func allows(_ request: Request) -> Bool {
        (try? checkWhenSet(request)) != nil
    }

    public func check(_ request: Request) throws {
        guard let token, !token.isEmpty else {
            throw HTTPError(.forbidden, message: "operator routes are off: start the server with --api-token TOKEN")
        }
        let given = Self.bearerToken(request) ?? ""
        guard RoomToken.constantTimeEqual(Array(given.utf8), Array(token.utf8)) else {
            var headers = HTTPFields()
            headers[.wwwAuthenticate] = "Bearer"
            throw HTTPError(.unauthorized, headers: headers,
                            message: given.isEmpty ? "this route needs Authorization: Bearer API_TOKEN" : "wrong API token")
        }
    }
}

struct RoomList: ResponseEncodable {
    /// Since the server started.
    struct Counters: Codable {
        var resumes: Int
        var expired: Int
        var replaced: Int
        var iceRestarts: Int
        /// Every session on the media port (WHIP and WHEP too): a peer's media moved to a new address of its own.
        var icePairSwitches: Int
    }

    var rooms: [RoomService.RoomSummary]
    var counters: Counters
}

/// The body and answer of `PUT /api/v1/rooms/ROOM/broadcast`.
struct BroadcastSwitch: ResponseEncodable, Decodable {
    var room: String?
    var enabled: Bool
    /// The participants' hub streams now (`room-ROOM/PARTICIPANT`).
    var streams: [String]?
}

struct RoomDetail: ResponseEncodable {
    struct Track: Codable {
        var id: String
        var kind: String
        /// "camera", "microphone", "screen" or "screenAudio".
        var source: String
        var muted: Bool
        var codec: String?
        /// Media packets; padding-only ones (bandwidth probes, sent even while muted) are counted apart.
        var packetsReceived: Int
        var paddingReceived: Int
        var packetsLost: Int64
        /// Bits per second over the last 4 s.
        var bitrate: Int
        var subscribers: Int
    }

    struct Participant: Codable {
        var id: String
        var name: String
        var identity: String
        var canPublish: Bool
        /// False while the seat is held for a resume.
        var connected: Bool
        /// Its hub stream while the room broadcasts and it publishes, and the ingest's figures.
        var hubStream: String?
        var hub: HubIngest.Stats?
        var tracks: [Track]
        var receiving: [RoomForwarder.SubscriptionFigures]
    }

    var name: String
    var videoCodec: String
    /// Whether its participants are hub streams (a meeting broadcast).
    var broadcast: Bool
    var participants: [Participant]
}
