import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import RTMPBridge
import SFU
import StreamHub

/// WHIP (RFC 9725) and WHEP: `POST /whip/APP/STREAM` publishes, `POST /whep/APP/STREAM` plays, each with an SDP
/// offer (`application/sdp`) and answered `201 Created` with the answer and the session's `Location`;
/// `DELETE` on that location ends it. The STUN and TURN servers are announced in `Link` headers (RFC 9725 4.4),
/// TURN with credentials minted for the session (the media port only).
///
/// Publishing needs the same keys as RTMP when some are configured (`--publish-key`), presented as
/// `Authorization: Bearer KEY` (RFC 9725 4.5); playing is open, like RTMP and HTTP-FLV playback.
public struct WebRTCRoutes: Sendable {
    public let registry: RouterRegistry
    let authentication: PublishAuthentication
    /// What clients are handed where sessions start (WHIP/WHEP Link headers here; P2P viewers' chunk lists).
    public let iceServers: ICEServerDirectory

    public init(registry: RouterRegistry, authentication: PublishAuthentication, iceServers: ICEServerDirectory) {
        (self.registry, self.authentication, self.iceServers) = (registry, authentication, iceServers)
    }

    public func add<Context: RequestContext>(to router: Hummingbird.Router<Context>) {
        for (path, publishing) in [("whip", true), ("whep", false)] {
            router.post("/\(path)/:app/:stream") { request, context in
                let key = try Self.key(context)
                if publishing && authentication.isEnabled {
                    let token = OperatorAuthentication.bearerToken(request) ?? ""
                    guard !token.isEmpty, authentication.allows(stream: key.description, query: "key=\(token)") else {
                        var headers = HTTPFields()
                        headers[.wwwAuthenticate] = "Bearer"
                        throw HTTPError(.unauthorized, headers: headers,
                                        message: token.isEmpty ? "publishing needs Authorization: Bearer KEY" : "this key may not publish \(key)")
                    }
                }
                if !publishing, let hub = registry.hub {
                    // A stream that needs a token (a broadcast room's): `?token=` or `Authorization: Bearer`.
                    let token = request.uri.query.flatMap { StreamHub.token(inQuery: $0[...]) } ?? OperatorAuthentication.bearerToken(request)
                    if let why = hub.playbackRefusal(key, token: token) {
                        throw HTTPError(token == nil ? .unauthorized : .forbidden, message: why)
                    }
                }
                guard request.headers[.contentType]?.lowercased().hasPrefix("application/sdp") == true else {
                    throw HTTPError(.unsupportedMediaType, message: "send the SDP offer as Content-Type: application/sdp")
                }
                let body = try await request.body.collect(upTo: 256 * 1024)
                let offer = String(buffer: body)
                let session: RouterRegistry.Session
                do throws(WebRTCError) {
                    session = try Self.start(registry, publishing: publishing, stream: key.description, offer: offer)
                } catch {
                    switch error {
                    case .negotiation: throw HTTPError(.badRequest, message: error.description)
                    case .alreadyPublished: throw HTTPError(.conflict, message: error.description)
                    case .notPublished: throw HTTPError(.notFound, message: error.description)
                    case .unplayable: throw HTTPError(.conflict, message: error.description)
                    case .unavailable: throw HTTPError(.serviceUnavailable, message: error.description)
                    }
                }
                var headers = HTTPFields()
                headers[.contentType] = "application/sdp"
                headers[.location] = "/\(path)/\(key.app)/\(key.stream)/\(session.id)"
                if let authority = request.head.authority, let host = ICEServerDirectory.host(ofAuthority: authority) {
                    for link in iceServers.linkHeaders(host: host) { headers.append(HTTPField(name: HTTPField.Name("Link")!, value: link)) }
                }
                return Response(status: .created, headers: headers, body: .init(byteBuffer: ByteBuffer(string: session.answer)))
            }
            router.delete("/\(path)/:app/:stream/:session") { _, context in
                let id = try context.parameters.require("session")
                guard registry.end(id) else { throw HTTPError(.notFound, message: "no session \(id)") }
                return Response(status: .ok)
            }
        }
        router.get("/api/v1/webrtc/streams") { _, _ in
            WebRTCStreams(streams: registry.snapshot(), bridged: registry.bridgeSnapshot(), bridgeVideoDelay: registry.bridgeMeter.summary,
                          audioTranscoders: registry.audioTranscoders)
        }
    }

    static func start(_ registry: RouterRegistry, publishing: Bool, stream: String, offer: String) throws(WebRTCError) -> RouterRegistry.Session {
        if publishing { return try registry.publish(stream: stream, offer: offer) }
        return try registry.play(stream: stream, offer: offer)
    }

    static func key<Context: RequestContext>(_ context: Context) throws -> StreamKey {
        let app = try context.parameters.require("app"), stream = try context.parameters.require("stream")
        guard let key = StreamKey(app: app, stream: stream) else {
            throw HTTPError(.badRequest, message: "invalid stream name: use letters, digits, '-', '_' and '.'")
        }
        return key
    }
}

public struct WebRTCStreams: ResponseEncodable {
    var streams: [RouterRegistry.Snapshot]
    /// RTMP streams played over WebRTC.
    var bridged: [RouterRegistry.BridgeSnapshot]
    /// Server-added video delay of those: a frame complete in the hub to its first SRTP packet sent.
    var bridgeVideoDelay: BridgeMeter.Summary
    /// AAC-to-Opus transcoders running: one per RTMP stream with WebRTC viewers taking its audio.
    var audioTranscoders: Int
}
