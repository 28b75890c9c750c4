import SFU

/// ``RoomMedia`` on the SFU: the protocol's calls handed to a ``RoomForwarder``, its errors named in the
/// protocol's codes.
struct SFURoomMedia: RoomMedia {
    let forwarder: RoomForwarder

    func publish(room: String, participant: String, offer: String, maxTracks: Int) throws(RoomError)
        -> (answer: String, tracks: [ServerMessage.PublishedTrack]) {
        do throws(RoomMediaError) {
            let (answer, tracks) = try forwarder.publish(room: room, participant: participant, offer: offer, maxTracks: maxTracks)
            return (answer, tracks.map { ServerMessage.PublishedTrack(id: $0.id, kind: $0.kind.rawValue, mid: $0.mid) })
        } catch {
            throw Self.roomError(error)
        }
    }

    func subscribe(room: String, participant: String, offer: String, tracks: [String: String]) throws(RoomError)
        -> (answer: String, refused: [String]) {
        do throws(RoomMediaError) {
            return try forwarder.subscribe(room: room, participant: participant, offer: offer, tracks: tracks)
        } catch {
            throw Self.roomError(error)
        }
    }

    func setSubscription(room: String, participant: String, track: String, enabled: Bool) -> Bool {
        forwarder.setSubscription(room: room, participant: participant, track: track, enabled: enabled)
    }

    func remove(room: String, participant: String) {
        forwarder.remove(room: room, participant: participant)
    }

    static func roomError(_ error: RoomMediaError) -> RoomError {
        switch error {
        case .badOffer(let why), .unsupported(let why): RoomError(.badSDP, why)
        case .codec(let why): RoomError(.codecUnsupported, why)
        case .tooManyTracks: RoomError(.tooManyTracks, error.description)
        case .unavailable(let why): RoomError(.unavailable, why)
        }
    }
}
