import Foundation
import RTP
import Testing
import TestSupport

/// The wall clock stepped an hour forward, then back (issue 23): libfaketime moves the binary's CLOCK_REALTIME only,
/// as an NTP step or an operator's `date -s` would; its monotonic clock, which every timer and timeout uses, runs on.
/// The streams go on, a room token is judged by the wall clock of the moment (expired an hour on, not valid yet an
/// hour back, since it was minted with the real time as its start; good again once the clock is back), and the WebRTC viewer's sender reports keep one NTP mapping (they are anchored to the wall
/// clock once, then run with the stream): no report jumps by the step.
///
/// On the plain build (an interop suite, scripts/suites.sh): the AddressSanitizer build of the binary never comes
/// up with libfaketime preloaded.
@Suite(.serialized, .timeLimit(.minutes(2))) struct ClockStepInteropTests {
    static let libfaketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
    static var binary: String { CommandLineTests.binary }

    @Test func theWallClockSteppedForwardAndBackTheStreamsGoOn() async throws {
        guard FileManager.default.fileExists(atPath: Self.libfaketime) else {
            throw TestFailure("no \(Self.libfaketime): scripts/test.sh installs Debian's faketime")
        }
        let offset = FileManager.default.temporaryDirectory.appendingPathComponent("liveswarm-clock-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: offset) }
        func step(_ value: String) throws { try value.write(to: offset, atomically: true, encoding: .utf8) }
        try step("+0")
        let (t, http, rtmp) = try await CommandLineTests().start(["--room-secret", "s3cret", "--no-rate-limits"], environment: [
            "LD_PRELOAD=\(Self.libfaketime)", "FAKETIME_TIMESTAMP_FILE=\(offset.path)", "FAKETIME_NO_CACHE=1",
            "FAKETIME_DONT_FAKE_MONOTONIC=1",
            ])
        defer { t.kill() }
        let media = try CommandLineTests.mediaAndSTUNPorts(t).media

        let mint = try Tool.executable(Self.binary, ["token", "--room", "standup", "--identity", "ann", "--ttl", "10m", "--secret", "s3cret"])
        #expect(await mint.wait(timeout: .seconds(20)) == 0, "\(mint.errorOutput)")
        let token = mint.output.trimmingCharacters(in: .whitespacesAndNewlines)
        func join() async throws -> String {
            let c = try await WebSocketTestClient.connect(port: http, path: "/ws")
            defer { c.close() }
            c.send(RoomEndpointTests.json(["type": "join", "version": 1, "room": "standup", "name": "ann", "token": token]))
            let answer = try RoomEndpointTests.object(try await c.text())
            return answer["type"] as? String == "joined" ? "joined" : answer["code"] as? String ?? "\(answer)"
        }
        let first = try await join()
        #expect(first == "joined", "\(first)")

        let publisher = try Tool.publisher(url: "rtmp://127.0.0.1:\(rtmp)/live/clock", seconds: 60, gop: 15, size: "320x240", fps: 15)
        defer { publisher.kill() }
        try await TestServer.waitUntil("the stream", timeout: .seconds(20)) {
            (try? await HTTPGet.fetch(port: http, "/api/v1/streams").text.contains("\"published\":true")) == true
        }
        let flv = try await FLVTestClient.open(port: http, path: "/live/clock.flv")
        let flvReading = flv.readInBackground()
        defer { flvReading.cancel() }
        let whep = try await SFUForwardingTests.connect(http: http, media: media, path: "/whep/live/clock", offer: WHIPTests.playOffer)
        defer { whep.link.close() }
        var reports: [UInt64] = []
        /// RTP packets and the sender reports' NTP times for `seconds`.
        func watch(_ seconds: Double) async throws -> Int {
            var packets = 0
            let end = ContinuousClock.now + .seconds(seconds)
            while ContinuousClock.now < end, let (p, rtcp) = try await whep.receive(timeout: end - ContinuousClock.now) {
                if !rtcp { packets += 1; continue }
                for case .senderReport(let sr) in (try? RTCPPacket.parseCompound(p)) ?? [] { reports.append(sr.ntpTimestamp) }
            }
            return packets
        }
        #expect(try await watch(3) > 20, "RTP before the steps")

        for (value, name, expected) in [("+3600", "an hour on", "tokenExpired"), ("-3600", "an hour back", "tokenExpired"), ("+0", "back to now", "joined")] {
            try step(value)
            let tags = flv.tags.count
            let packets = try await watch(3)
            print("the wall clock \(name): \(packets) RTP packets in 3 s, \(flv.tags.count - tags) FLV tags")
            #expect(packets > 20, "WHEP, the wall clock \(name): \(packets) RTP packets in 3 s")
            #expect(flv.tags.count - tags > 20, "HTTP-FLV, the wall clock \(name): \(flv.tags.count - tags) tags in 3 s")
            let joined = try await join()
            #expect(joined == expected, "a token good for 10 minutes, the wall clock \(name): \(joined)")
        }
        // One NTP mapping throughout: sender reports come every second or so, and none is more than 5 s from the last.
        let gaps = zip(reports, reports.dropFirst()).map { Double(Int64(bitPattern: $1 &- $0)) / 4_294_967_296 }
        print("sender reports: \(reports.count), gaps \(gaps.map { String(format: "%.2f", $0) })")
        #expect(reports.count >= 5 && gaps.allSatisfy { $0 > -1 && $0 < 5 }, "sender report NTP gaps: \(gaps)")
        #expect(t.isRunning)
        await flv.close()
    }
}
