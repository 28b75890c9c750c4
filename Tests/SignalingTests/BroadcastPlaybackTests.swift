import Foundation
@testable import Signaling
import StreamHub
import Testing

/// Who may watch a broadcast room's hub streams (`room-ROOM/PARTICIPANT`): with a room secret, a valid token for
/// that room; other streams and rooms without a secret are open.
@Suite struct BroadcastPlaybackTests {
    static let now = 1_800_000_000.0
    static let key = StreamKey(app: "room-town", stream: "p1")!

    static func token(room: String = "town", expires: Double = now + 60, secret: String = "s", publish: Bool = false) -> String {
        RoomToken(room: room, identity: "viewer", expires: Int(expires), canPublish: publish).signed(secret: secret)
    }

    @Test func aValidTokenForTheRoomPlaysAndAnyOtherDoesNot() {
        #expect(RoomEndpoint.playbackRefusal(Self.key, token: Self.token(), secret: "s", now: Self.now) == nil)
        #expect(RoomEndpoint.playbackRefusal(Self.key, token: Self.token(publish: true), secret: "s", now: Self.now) == nil)
        #expect(RoomEndpoint.playbackRefusal(Self.key, token: nil, secret: "s", now: Self.now)?.contains("needs a token") == true)
        #expect(RoomEndpoint.playbackRefusal(Self.key, token: "", secret: "s", now: Self.now)?.contains("needs a token") == true)
        #expect(RoomEndpoint.playbackRefusal(Self.key, token: Self.token(room: "other"), secret: "s", now: Self.now)?.contains("room other, not town") == true)
        #expect(RoomEndpoint.playbackRefusal(Self.key, token: Self.token(secret: "t"), secret: "s", now: Self.now)?.contains("secret") == true)
        #expect(RoomEndpoint.playbackRefusal(Self.key, token: Self.token(expires: Self.now - 60), secret: "s", now: Self.now)?.contains("expired") == true)
        #expect(RoomEndpoint.playbackRefusal(Self.key, token: "not.a.jwt", secret: "s", now: Self.now) != nil)
    }

    @Test func otherStreamsAndOpenRoomsNeedNoToken() {
        #expect(RoomEndpoint.playbackRefusal(StreamKey(app: "live", stream: "cam")!, token: nil, secret: "s", now: Self.now) == nil)
        #expect(RoomEndpoint.playbackRefusal(StreamKey(app: "room-", stream: "x")!, token: nil, secret: "s", now: Self.now) == nil)
        #expect(RoomEndpoint.playbackRefusal(Self.key, token: nil, secret: nil, now: Self.now) == nil)
    }
}
