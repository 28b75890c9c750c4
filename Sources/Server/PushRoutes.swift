import Foundation
import Hummingbird
import RTMPBridge
import StreamHub

/// Pushes of a stream to other RTMP servers (docs/PUSH.md): `POST /api/v1/streams/APP/STREAM/pushes` with
/// `{"url": "rtmp://HOST/APP/KEY"}` starts one (operator write: `--api-token`), `GET` lists them with their state and
/// bytes, `DELETE .../pushes/ID` stops one. A stream need not be live to be pushed: the push waits for it.
extension HTTPRoutes {
    struct PushRequest: Decodable {
        var url: String
    }

    struct PushList: ResponseEncodable {
        var pushes: [RTMPPush.Snapshot]
    }

    func addPushRoutes(to router: Hummingbird.Router<HTTPContext>) {
        guard let pushes else { return }
        let operators = self.operators
        router.get("/api/v1/streams/:app/:stream/pushes") { _, context -> PushList in
            let key = try streamKey(context.parameters.require("app"), context.parameters.require("stream"))
            return PushList(pushes: pushes.snapshot(stream: key))
        }
        router.post("/api/v1/streams/:app/:stream/pushes") { request, context -> EditedResponse<RTMPPush.Snapshot> in
            try operators.check(request)
            let key = try streamKey(context.parameters.require("app"), context.parameters.require("stream"))
            let body = try await request.body.collect(upTo: 4096)
            let wanted: PushRequest
            do { wanted = try JSONDecoder().decode(PushRequest.self, from: Data(buffer: body)) } catch {
                throw HTTPError(.badRequest, message: #"the body is {"url": "rtmp://HOST[:PORT]/APP/KEY"}"#)
            }
            do throws(PushError) {
                let push = try pushes.start(stream: key, url: wanted.url)
                return EditedResponse(status: .created, headers: [.location: "/api/v1/streams/\(key)/pushes/\(push.id)"], response: push.snapshot)
            } catch {
                throw HTTPError(error == .tooMany(PushManager.maxPerStream) ? .conflict : .badRequest, message: error.description)
            }
        }
        router.delete("/api/v1/streams/:app/:stream/pushes/:id") { request, context -> HTTPResponse.Status in
            try operators.check(request)
            let id = try context.parameters.require("id")
            do throws(PushError) { try pushes.stop(id: id) } catch { throw HTTPError(.notFound, message: error.description) }
            return .ok
        }
    }
}

extension RTMPPush.Snapshot: ResponseEncodable {}
