import AMF0
import Foundation
import NIOCore
import RTMP
import RTP
import Testing
import TestSupport

/// The RTMP-to-WebRTC bridge with our own clients on both ends: an RTMP publisher sending exact H.264 bytes, and
/// WHEP viewers (ICE, DTLS, SRTP from our modules) that read the RTP back with the depacketizer. What the viewer
/// decodes must be exactly what was published, the SPS and PPS before every IDR, in 90 kHz time.
@Suite(.serialized, .timeLimit(.minutes(5))) struct BridgeTests {
    static let sps: [UInt8] = [0x67, 0x42, 0xC0, 0x1E, 0xDA, 0x02, 0x80]
    static let pps: [UInt8] = [0x68, 0xCE, 0x3C, 0x80]

    /// An AVC sequence header (avcC) with these parameter sets.
    static func config(sps: [[UInt8]] = [sps], pps: [[UInt8]] = [pps]) -> [UInt8] {
        var avcc: [UInt8] = [1, 0x42, 0xC0, 0x1E, 0xFF, 0xE0 | UInt8(sps.count)]
        for s in sps { avcc += [UInt8(s.count >> 8), UInt8(s.count & 0xFF)] + s }
        avcc.append(UInt8(pps.count))
        for p in pps { avcc += [UInt8(p.count >> 8), UInt8(p.count & 0xFF)] + p }
        return [0x17, 0, 0, 0, 0] + avcc
    }

    /// A coded frame: FLV video header (keyframe or not, composition time), then 4-byte-length NAL units.
    static func frame(key: Bool, cts: Int32 = 0, _ nals: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = [key ? 0x17 : 0x27, 1, UInt8((cts >> 16) & 0xFF), UInt8((cts >> 8) & 0xFF), UInt8(cts & 0xFF)]
        for n in nals { out += [UInt8(n.count >> 24), UInt8(n.count >> 16 & 0xFF), UInt8(n.count >> 8 & 0xFF), UInt8(n.count & 0xFF)] + n }
        return out
    }

    /// Picture `i`: an IDR or a P slice with a body that says which picture it is; every 3rd is larger than one
    /// packet (FU-A).
    static func slice(_ i: Int, key: Bool) -> [UInt8] {
        [key ? 0x65 : 0x41] + (0..<(i % 3 == 0 ? 2500 : 300)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ i) }
    }

    static func publisher(_ server: TestServer, _ name: String) async throws -> RTMPTestClient {
        let c = try await RTMPTestClient.connect(port: server.ports.rtmp)
        guard try await c.publish(name) == "NetStream.Publish.Start" else { throw TestFailure("publish refused") }
        return c
    }

    static func video(_ c: RTMPTestClient, _ ts: UInt32, _ body: [UInt8]) async throws {
        try await c.send(Message(type: .video, streamID: 1, timestamp: ts, payload: ByteBuffer(bytes: body)), csid: 7)
    }

    /// A WHEP viewer of `stream` with what it has depacketized so far.
    final class Viewer: @unchecked Sendable {
        let peer: SFUForwardingTests.Peer
        var depacketizer = H264Depacketizer()
        var units: [H264Depacketizer.AccessUnit] = []
        var packets: [RTPPacket] = []
        var failures: [H264Depacketizer.Failure] = []

        init(_ peer: SFUForwardingTests.Peer) { self.peer = peer }

        var ssrc: UInt32? { peer.answerAttribute("a=ssrc:", in: "video")?.split(separator: " ").first.flatMap { UInt32($0) } }
        var payloadType: UInt8? { peer.answerAttribute("a=rtpmap:", in: "video")?.split(separator: " ").first.flatMap { UInt8($0) } }

        /// Reads RTP until `count` access units in all arrived (or `timeout` passes without a packet).
        func read(until count: Int, timeout: Duration = .seconds(3)) async throws {
            while units.count < count, let (p, rtcp) = try await peer.receive(timeout: timeout) {
                guard !rtcp else { continue }
                let packet = try RTPPacket(parsing: p)
                guard packet.header.ssrc == ssrc else { continue }
                packets.append(packet)
                do {
                    if let au = try depacketizer.push(sequenceNumber: packet.header.sequenceNumber, timestamp: packet.header.timestamp,
                                                      marker: packet.header.marker, payload: packet.payload) {
                        units.append(au)
                    }
                } catch {
                    failures.append(error)
                }
            }
        }

        func close() { peer.link.close() }
    }

    static func viewer(_ server: TestServer, _ stream: String) async throws -> Viewer {
        Viewer(try await SFUForwardingTests.connect(server, path: "/whep/\(stream)", offer: WHIPTests.playOffer))
    }

    /// Frames published before the viewer joined come from the GOP cache (from its keyframe); those after come
    /// live. Every access unit arrives whole and in order, the IDR after a STAP-A of SPS and PPS, timestamps
    /// 90 kHz from the RTMP times; the answer names H.264 and rejects the audio section (no audio yet).
    @Test func anRTMPStreamReachesAWHEPViewerAsH264() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let pub = try await Self.publisher(server, "h264")
        try await Self.video(pub, 0, Self.config())
        for i in 0..<10 { try await Self.video(pub, UInt32(i * 40), Self.frame(key: i == 0, [[0x06, 0x05, 0x01, 0x80], Self.slice(i, key: i == 0)])) }
        try await server.waitForStream(.init(app: "live", stream: "h264")!)
        let viewer = try await Self.viewer(server, "live/h264")
        defer { viewer.close() }

        #expect(viewer.peer.answer.contains("m=audio 0 "), "audio is rejected until the bridge transcodes it")
        let fmtp = viewer.peer.answerAttribute("a=fmtp:\(viewer.payloadType ?? 0) ", in: "video")
        // The stream is Baseline (profile_idc 0x42): the answer names an offered Baseline format.
        #expect(fmtp?.contains("packetization-mode=1") == true && fmtp?.contains("profile-level-id=42") == true, "\(fmtp ?? "-")")

        try await viewer.read(until: 10)
        for i in 10..<25 {
            try await Self.video(pub, UInt32(i * 40), Self.frame(key: i == 15, [Self.slice(i, key: i == 15)]))
        }
        try await viewer.read(until: 25)
        #expect(viewer.failures.isEmpty, "\(viewer.failures)")
        #expect(viewer.units.count == 25)
        for (i, au) in viewer.units.enumerated() {
            let key = i == 0 || i == 15
            var expected = key ? [Self.sps, Self.pps] : []
            if i < 10 { expected.append([0x06, 0x05, 0x01, 0x80]) }
            expected.append(Self.slice(i, key: key))
            #expect(au.nalUnits == expected, "access unit \(i)")
        }
        // The cached pictures more than 100 ms behind the live edge (360 ms) went 4x faster with 4x compressed
        // timestamps (40 ms = 900 ticks apart); from the first within 100 ms on (280 ms), 40 ms = 3600 ticks.
        let steps = zip(viewer.units, viewer.units.dropFirst()).map { $1.timestamp &- $0.timestamp }
        #expect(steps == Array(repeating: 900, count: 7) + Array(repeating: 3600, count: 17), "\(steps)")
        // One RTP stream: our SSRC and payload type, consecutive sequence numbers, a marker ending each picture.
        let seqs = viewer.packets.map(\.header.sequenceNumber)
        #expect(zip(seqs, seqs.dropFirst()).allSatisfy { $1 == $0 &+ 1 })
        #expect(viewer.packets.allSatisfy { $0.header.payloadType == viewer.payloadType && $0.payload.count <= 1200 })
        #expect(viewer.packets.filter(\.header.marker).count == 25)

        let api = try await HTTPGet.fetch(port: server.ports.http, "/api/v1/webrtc/streams").text
        #expect(api.contains("\"framesSent\":25"), "\(api)")
        let streams = try await HTTPGet.fetch(port: server.ports.http, "/api/v1/streams").text
        #expect(streams.contains("\"webrtc\":1"), "the WHEP viewer counts as a viewer of the stream: \(streams)")
        // Each picture of more than one packet (every third: its slice in three FU-A fragments, the first two of
        // one length) left as one segmented message (UDP GSO), and so did the first IDR's STAP-A with the shorter
        // SEI after it; everything else went alone. What arrived above is what the kernel cut from them.
        let segmented = try await server.metric("liveswarm_rtc_segmented_datagrams_total").map { Int($0) }
        #expect(segmented == 9 * 3 + 2, "9 pictures' fragments and a STAP-A with an SEI went segmented: \(segmented.map { "\($0)" } ?? "no such metric")")
    }

    /// Each kind of bad input, with two viewers watching: neither the server nor the other viewer notices more than
    /// the pictures that could not be sent; each problem is named once in the API.
    @Test func badInputCostsOnlyTheBrokenPictures() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let pub = try await Self.publisher(server, "bad")
        try await Self.video(pub, 0, Self.config())
        try await Self.video(pub, 0, Self.frame(key: true, [Self.slice(0, key: true)]))
        try await server.waitForStream(.init(app: "live", stream: "bad")!)
        let a = try await Self.viewer(server, "live/bad"), b = try await Self.viewer(server, "live/bad")
        defer { a.close(); b.close() }
        try await a.read(until: 1)
        try await b.read(until: 1)
        var t: UInt32 = 40
        func next() -> UInt32 { defer { t += 40 }; return t }

        // NAL unit lengths past the end of the frame: that picture is dropped, and so is what follows up to the
        // next keyframe (it may refer to it).
        try await Self.video(pub, next(), Self.frame(key: false, [Self.slice(1, key: false)]))
        var overrun = Self.frame(key: false, [Self.slice(2, key: false)])
        overrun[5...8] = [0, 0, 0x40, 0]
        try await Self.video(pub, next(), overrun)
        try await Self.video(pub, next(), Self.frame(key: false, [Self.slice(3, key: false)]))
        try await Self.video(pub, next(), Self.frame(key: true, [Self.slice(4, key: true)]))
        // A sequence header without SPS, then a truncated one: nothing goes until a usable one.
        var noSPS = Self.config(sps: [])
        noSPS[10] = 0xE0
        try await Self.video(pub, next(), noSPS)
        try await Self.video(pub, next(), Self.frame(key: true, [Self.slice(5, key: true)]))
        try await Self.video(pub, next(), Array(Self.config().prefix(14)))
        try await Self.video(pub, next(), Self.frame(key: true, [Self.slice(6, key: true)]))
        // A new resolution: a new SPS, sent before the next IDR.
        let bigger: [UInt8] = [0x67, 0x42, 0xC0, 0x28, 0xDA, 0x01, 0xE0]
        try await Self.video(pub, next(), Self.config(sps: [bigger]))
        try await Self.video(pub, next(), Self.frame(key: false, [Self.slice(7, key: false)]))
        try await Self.video(pub, next(), Self.frame(key: true, [Self.slice(8, key: true)]))
        // Video stops for a second (audio goes on), then comes back.
        for _ in 0..<25 {
            try await pub.send(Message(type: .audio, streamID: 1, timestamp: next(), payload: ByteBuffer(bytes: [0xAF, 1, 0x21, 0x10, 0x04])), csid: 6)
            try await Task.sleep(for: .milliseconds(40))
        }
        try await Self.video(pub, next(), Self.frame(key: false, [Self.slice(9, key: false)]))

        for v in [a, b] {
            try await v.read(until: 5)
            #expect(v.failures.isEmpty, "\(v.failures)")
            let sent = v.units.map { $0.nalUnits.last!.prefix(1) + $0.nalUnits.last!.dropFirst().prefix(1) }
            #expect(sent == [[0x65, 0], [0x41, 1], [0x65, 4], [0x65, 8], [0x41, 9]], "pictures 0, 1, 4, 8 and 9 go; 2, 3 and 5-7 do not")
            #expect(v.units[2].nalUnits.prefix(2) == [Self.sps, Self.pps])
            #expect(v.units[3].nalUnits.prefix(2) == [bigger, Self.pps], "the new SPS before the IDR")
        }
        let api = try await HTTPGet.fetch(port: server.ports.http, "/api/v1/webrtc/streams").text
        #expect(api.contains("NAL unit") && api.contains("numOfSequenceParameterSets 0") && api.contains("truncated"), "\(api)")
        #expect(try await HTTPGet.fetch(port: server.ports.http, "/api/v1/streams").status == 200)
    }

    /// The publisher drops and another one takes the stream: the viewer keeps its SSRC, its sequence numbers go on
    /// without a gap, its timestamps go forward, and the new session's first picture is its IDR with its own SPS.
    @Test func republishKeepsTheViewersRTPStream() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let first = try await Self.publisher(server, "re")
        try await Self.video(first, 0, Self.config())
        for i in 0..<3 { try await Self.video(first, UInt32(i * 40), Self.frame(key: i == 0, [Self.slice(i, key: i == 0)])) }
        try await server.waitForStream(.init(app: "live", stream: "re")!)
        let viewer = try await Self.viewer(server, "live/re")
        defer { viewer.close() }
        try await viewer.read(until: 3)
        await first.tcp.close()
        try await Task.sleep(for: .milliseconds(300))
        let second = try await Self.publisher(server, "re")
        let other: [UInt8] = [0x67, 0x4D, 0x40, 0x1F, 0xEC, 0x05, 0xA0]
        try await Self.video(second, 0, Self.config(sps: [other]))
        for i in 0..<3 { try await Self.video(second, UInt32(i * 40), Self.frame(key: i == 0, [Self.slice(10 + i, key: i == 0)])) }
        try await viewer.read(until: 6)
        #expect(viewer.units.count == 6 && viewer.failures.isEmpty)
        #expect(Set(viewer.packets.map(\.header.ssrc)).count == 1)
        let seqs = viewer.packets.map(\.header.sequenceNumber)
        #expect(zip(seqs, seqs.dropFirst()).allSatisfy { $1 == $0 &+ 1 }, "\(seqs)")
        let gap = Int32(bitPattern: viewer.units[3].timestamp &- viewer.units[2].timestamp)
        #expect(gap >= 300 * 90, "the timestamps move on by at least the outage: \(gap) ticks")
        #expect(viewer.units[3].nalUnits.prefix(2) == [other, Self.pps])
    }

    /// A publisher that does not come back within the republish grace: the hub ends the stream, and with it the
    /// WHEP session (the viewer gets DTLS close_notify; the session is gone from the API).
    @Test func theSessionEndsWithTheStream() async throws {
        let server = try await TestServer.start { $0.hub.republishGrace = .milliseconds(500) }
        defer { Task { await server.stop() } }
        let pub = try await Self.publisher(server, "gone")
        try await Self.video(pub, 0, Self.config())
        try await Self.video(pub, 0, Self.frame(key: true, [Self.slice(0, key: true)]))
        try await server.waitForStream(.init(app: "live", stream: "gone")!)
        let viewer = try await Self.viewer(server, "live/gone")
        defer { viewer.close() }
        try await viewer.read(until: 1)
        await pub.tcp.close()
        var alert = false
        let deadline = ContinuousClock.now + .seconds(5)
        while !alert, ContinuousClock.now < deadline, let p = await viewer.peer.link.receive(timeout: .seconds(1)) {
            alert = p.first == 21  // a DTLS alert record (close_notify)
        }
        #expect(alert, "the viewer is told the session ended")
        try await server.waitUntil("the bridged session gone", timeout: .seconds(5)) {
            (try? await HTTPGet.fetch(port: server.ports.http, "/api/v1/webrtc/streams"))?.text.contains("\"bridged\":[]") == true
        }
    }

    /// A viewer's NACK is answered from its own history, on the RTX stream it negotiated (the original sequence
    /// number first).
    @Test func nackIsAnsweredOnRTX() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let pub = try await Self.publisher(server, "nack")
        try await Self.video(pub, 0, Self.config())
        try await Self.video(pub, 0, Self.frame(key: true, [Self.slice(0, key: true)]))
        try await server.waitForStream(.init(app: "live", stream: "nack")!)
        let viewer = try await Self.viewer(server, "live/nack")
        defer { viewer.close() }
        try await viewer.read(until: 1)
        let fid = try #require(viewer.peer.answerAttribute("a=ssrc-group:FID ", in: "video")?.split(separator: " ").compactMap { UInt32($0) })
        let wanted = viewer.packets[1].header.sequenceNumber
        var nack: [UInt8] = []
        RTCPPacket.nack(GenericNACK(senderSSRC: 1, mediaSSRC: try #require(viewer.ssrc), lost: [wanted])).write(to: &nack)
        try await viewer.peer.send(nack, rtcp: true)
        var again: RTPPacket?
        while again == nil, let (p, rtcp) = try await viewer.peer.receive() {
            if !rtcp, let r = try? RTPPacket(parsing: p), r.header.ssrc == fid.last { again = r }
        }
        let r = try #require(again)
        #expect(Array(r.payload.prefix(2)) == [UInt8(wanted >> 8), UInt8(wanted & 0xFF)])
        #expect(Array(r.payload.dropFirst(2)) == Array(viewer.packets[1].payload))
    }

    /// A stream whose video is not H.264 (HEVC over Enhanced RTMP) is refused with the reason; a name nobody
    /// publishes is 404.
    @Test func videoOtherThanH264IsRefused() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let pub = try await Self.publisher(server, "hevc")
        // Enhanced RTMP SequenceStart for 'hvc1' (an hvcC body is not needed to name the codec).
        try await Self.video(pub, 0, [0x90] + Array("hvc1".utf8) + [1, 2, 3])
        try await Self.video(pub, 0, [0x91] + Array("hvc1".utf8) + [0, 0, 0, 0, 0, 0, 2, 0x26, 0x01])
        try await server.waitForStream(.init(app: "live", stream: "hevc")!)
        let r = try await WHIPTests.post(server, "/whep/live/hevc", WHIPTests.playOffer)
        #expect(r.status == 409 && r.text.contains("hevc") && r.text.contains("H.264"), "\(r.status) \(r.text)")
        #expect(try await WHIPTests.post(server, "/whep/live/nobody", WHIPTests.playOffer).status == 404)
    }
}
