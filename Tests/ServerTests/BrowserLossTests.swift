import Foundation
import Server
import StreamHub
import Testing
import TestSupport

/// Lossy paths, with Chromium inside a network namespace and nftables dropping 5 % of the UDP packets at random.
/// A WHEP viewer there asks for what it lost and gets it from the SFU's buffer; a WHIP publisher there is asked
/// by the SFU for what it lost, and its RTX fills the gaps before viewers notice. Each control run, with NACK off
/// in the server, does worse.
@Suite(.serialized, .timeLimit(.minutes(5))) struct BrowserLossTests {
    struct Run {
        var framesDecoded: Int
        var nackCount: Int
        var freezeSeconds: Double
        var freezeCount: Int
        var dropped: Int
        var retransmitted: Int
        var rtxReceived: Int
        var seconds: Double
        var freezeShare: Double { freezeSeconds / seconds }
    }

    /// What the page reports (`window.webrtcStats()`), as far as these tests read it.
    struct Stats: Decodable {
        var connection: String
        var error: String?
        var framesDecoded: Int?
        var nackCount: Int?
        /// What arrived on the RTX stream (Chromium counts RTX it could unwrap).
        var retransmittedPacketsReceived: Int?
        var pliCount: Int?
        var freezeCount: Int?
        var totalFreezesDuration: Double?
        var videoPacketsLost: Int?
        var videoPacketsReceived: Int?
    }

    /// A counter of `/api/v1/webrtc/streams` (the first stream's).
    static func counter(_ name: String, in api: String) -> Int {
        api.range(of: "\"\(name)\":").map { Int(api[$0.upperBound...].prefix { $0.isNumber }) ?? 0 } ?? 0
    }

    /// Headless Chromium on the webrtc page, inside the namespace, reaching the server at the host's address.
    static func page(in ns: NetworkNamespace, _ server: TestServer, _ query: String, seconds: Int) throws -> Tool {
        try ns.python(Tool.driveArguments(url: "http://\(ns.hostAddress):\(server.ports.http)/webrtc/?\(query)", seconds: seconds,
                                          statsJS: "return window.webrtcStats()"))
    }

    /// The viewer, Chromium inside the namespace, loses 5 % of what the media port sends it.
    static func run(nack: Bool, seconds: Int = 20) async throws -> Run {
        try await NetworkNamespace.with { ns in
            let server = try await TestServer.start(reachableFrom: ns) { $0.webRTC.nack = nack }
            defer { Task { await server.stop() } }
            try await ns.dropIncoming(percent: 5, udpSourcePort: server.ports.rtcUDP)
            let publisher = try BrowserWebRTCTests.page(server, "role=publish&stream=live/loss&size=640x480&noise=1", seconds: seconds + 25)
            defer { publisher.kill(SIGTERM) }
            try await server.waitForWebRTCStream("live/loss", timeout: .seconds(30))
            try await Task.sleep(for: .seconds(3))  // past the bitrate ramp-up
            let viewer = try Self.page(in: ns, server, "role=play&stream=live/loss", seconds: seconds)
            let s = try await viewer.jsonResult(Stats.self, timeout: .seconds(Int64(seconds) + 60))
            #expect(s.connection == "connected" && s.error == nil, "viewer: \(s.error ?? s.connection)")
            let api = try await HTTPGet.fetch(port: server.ports.http, "/api/v1/webrtc/streams").text
            return Run(framesDecoded: s.framesDecoded ?? 0, nackCount: s.nackCount ?? 0, freezeSeconds: s.totalFreezesDuration ?? 0,
                       freezeCount: s.freezeCount ?? 0, dropped: try await ns.dropped(), retransmitted: counter("retransmitted", in: api),
                       rtxReceived: s.retransmittedPacketsReceived ?? 0, seconds: Double(seconds))
        }
    }

    struct PublisherRun {
        var dropped: (video: Int, rtx: Int, other: Int)
        var nacksToPublisher: Int
        var recovered: Int
        var viewerLost: Int
        var viewerPackets: Int
        var framesDecoded: Int
        var freezeSeconds: Double
        /// The share of the video packets sent to the viewer that it never received.
        var viewerLossShare: Double { Double(viewerLost) / Double(max(1, viewerLost + viewerPackets)) }
    }

    /// How long the viewer of a lossy publisher watches: 20 s until CI passed 45 minutes (2026-12-07); at 12 s the
    /// runs still lose about 130 packets each against floors of 50 and 20.
    static let publisherSeconds = 12

    /// The publisher, Chromium inside the namespace, loses 5 % of what it sends to the media port; the viewer
    /// watches on the host.
    static func publisherRun(nack: Bool, seconds: Int = publisherSeconds) async throws -> PublisherRun {
        try await NetworkNamespace.with { ns in
            // VP8 (payload types 96 and 97 in Chromium's offer, which the drop rules count apart): the SFU's path
            // alone, without the hub ingest that would have the answer take H.264.
            let server = try await TestServer.start(reachableFrom: ns) {
                $0.webRTC.nack = nack
                $0.webRTC.whipToHub = false
            }
            defer { Task { await server.stop() } }
            try await ns.dropOutgoing(percent: 5, udpDestinationPort: server.ports.rtcUDP)
            let publisher = try Self.page(in: ns, server, "role=publish&stream=live/lossy-in&size=640x480&noise=1", seconds: seconds + 25)
            defer { publisher.kill(SIGTERM) }
            try await server.waitForWebRTCStream("live/lossy-in", timeout: .seconds(30))
            try await Task.sleep(for: .seconds(3))  // past the bitrate ramp-up
            let viewer = try BrowserWebRTCTests.page(server, "role=play&stream=live/lossy-in", seconds: seconds)
            let s = try await viewer.jsonResult(Stats.self, timeout: .seconds(Int64(seconds) + 60))
            #expect(s.connection == "connected" && s.error == nil, "viewer: \(s.error ?? s.connection)")
            let api = try await HTTPGet.fetch(port: server.ports.http, "/api/v1/webrtc/streams").text
            return PublisherRun(dropped: try await ns.droppedOutgoing(), nacksToPublisher: counter("nacksToPublisher", in: api),
                                recovered: counter("recoveredFromPublisher", in: api), viewerLost: s.videoPacketsLost ?? 0,
                                viewerPackets: s.videoPacketsReceived ?? 0, framesDecoded: s.framesDecoded ?? 0,
                                freezeSeconds: s.totalFreezesDuration ?? 0)
        }
    }

    /// Loss between the publisher and LiveSwarm: LiveSwarm NACKs the publisher, Chromium retransmits over RTX,
    /// and the viewer sees almost none of the loss. The control run (NACK off) passes the loss on to the viewer.
    @Test func publisherLossIsRepairedByNACKAndRTX() async throws {
        let with = try await Self.publisherRun(nack: true)
        let without = try await Self.publisherRun(nack: false)
        for (name, r) in [("NACK on", with), ("NACK off", without)] {
            print("""
                5 % loss from the publisher, \(name): dropped \(r.dropped.video) VP8, \(r.dropped.rtx) RTX, \(r.dropped.other) other \
                packets; \(r.nacksToPublisher) asked for again, \(r.recovered) recovered; the viewer lost \(r.viewerLost) of \
                \(r.viewerPackets) video packets (\(String(format: "%.1f", r.viewerLossShare * 100)) %), decoded \(r.framesDecoded) frames, frozen \(String(format: "%.1f", r.freezeSeconds)) s
                """)
        }
        #expect(with.dropped.video > 50, "the path lost video packets")
        #expect(with.nacksToPublisher >= with.dropped.video / 2 && Double(with.recovered) >= 0.8 * Double(with.dropped.video),
                "asked for \(with.nacksToPublisher), recovered \(with.recovered) of \(with.dropped.video) VP8 packets lost")
        #expect(without.nacksToPublisher == 0 && without.recovered == 0)
        // Before RTX copies of packets not seen yet were taken (libwebrtc's bandwidth probes resend its newest
        // packets), the viewer froze 6-13 s of 20 with NACK on; now 0.
        #expect(with.freezeSeconds < 3, "the viewer was frozen \(with.freezeSeconds) s of \(Self.publisherSeconds) with NACK on")
        // Judged as shares of what the viewer was sent: the two runs' bitrates differ (the publisher's bandwidth
        // estimate follows its losses), so their counts do not compare (CI once had 63 of 1155 lost without NACK,
        // 21 of 1752 with: 5.5 % against 1.2 %).
        #expect(without.viewerLost > 20 && without.viewerLossShare > 3 * max(0.001, with.viewerLossShare),
                "the viewer lost \(without.viewerLost) of \(without.viewerLost + without.viewerPackets) without NACK, \(with.viewerLost) of \(with.viewerLost + with.viewerPackets) with")
    }

    @Test func nackRecoversFivePercentLossAndTheControlRunFreezesMore() async throws {
        // The house rule (CPUSampler.starved): a NACK run that could not decode 25 frames a second on a machine 70 %
        // busy is repeated once; if the repeat is starved too, its freezes are reported, not judged.
        func isStarved(_ r: (run: Run, busy: Double)) -> Bool {
            CPUSampler.starved(busy: r.busy, presentedFPS: Double(r.run.framesDecoded) / max(1, r.run.seconds))
        }
        let (with, busy) = try await CPUSampler.againIfStarved({ _ in
            let cpu = CPUSampler()
            let run = try await Self.run(nack: true)
            return (run: run, busy: cpu.busyFraction())
        }, isStarved: isStarved) { r in
            print("NACK run starved (CPUs \(Int(r.busy * 100)) % busy, \(r.run.framesDecoded) frames decoded in \(Int(r.run.seconds)) s): run again")
        }
        let starved = isStarved((with, busy))
        let without = try await Self.run(nack: false)
        for (name, r) in [("NACK on", with), ("NACK off", without)] {
            print("""
                5 % loss to the viewer, \(name): \(r.dropped) packets dropped by nftables, \(r.nackCount) NACKs sent, \
                \(r.retransmitted) retransmitted (\(r.rtxReceived) RTX packets received); \(r.framesDecoded) frames decoded in \(Int(r.seconds)) s; \
                \(r.freezeCount) freezes, frozen \(String(format: "%.1f", r.freezeShare * 100)) % of the time
                """)
        }
        #expect(with.dropped > 50, "the path lost packets")
        #expect(with.nackCount > 0 && with.retransmitted > 0)
        #expect(with.rtxReceived > with.retransmitted / 2, "Chromium took the retransmissions on the RTX stream it negotiated")
        #expect(without.retransmitted == 0)
        CPUSampler.judgeTiming(starved: starved, "starved twice: CPUs \(Int(busy * 100)) % busy, \(with.framesDecoded) frames decoded in \(Int(with.seconds)) s") {
            #expect(with.freezeShare < 0.15, "frozen \(with.freezeShare * 100) % of the time with NACK")
            #expect(without.freezeSeconds > with.freezeSeconds + 1 || Double(without.framesDecoded) < 0.8 * Double(with.framesDecoded),
                    "without NACK: frozen \(without.freezeSeconds) s, \(without.framesDecoded) frames; with: \(with.freezeSeconds) s, \(with.framesDecoded) frames")
        }
    }

    /// A WHIP stream bridged to the hub (H.264 and Opus) while 5 % of what the publisher sends is lost: the ingest
    /// waits for the NACKed packets, so ffmpeg over HTTP-FLV decodes (nearly) every frame the browser encoded, and
    /// a WHEP viewer of the same stream on the host hardly freezes.
    @Test func aBridgedStreamKeepsItsFramesUnderPublisherLoss() async throws {
        try await NetworkNamespace.with { ns in
            let server = try await TestServer.start(reachableFrom: ns)
            defer { Task { await server.stop() } }
            try await ns.dropOutgoing(percent: 5, udpDestinationPort: server.ports.rtcUDP)
            let probe = "const s = window.webrtcStats(); return {f: s.framesEncoded || 0, t: performance.now() / 1000, nacks: s.nackReceived, rtx: s.retransmittedPacketsSent, plis: s.pliReceived, keyframes: s.keyFramesEncoded, kbps: s.videoSendKbps}"
            let publisher = try ns.python(Tool.driveArguments(
                url: "http://\(ns.hostAddress):\(server.ports.http)/webrtc/?role=publish&stream=live/lossy-hub&size=640x360&codec=h264&color=20a040&tone=440",
                seconds: 60, statsJS: "return window.webrtcStats()", scripts: ["12:\(probe)", "42:\(probe)"],
                flags: ["--autoplay-policy=no-user-gesture-required"]))
            defer { publisher.kill(SIGTERM) }
            try await server.waitForStream(StreamKey(app: "live", stream: "lossy-hub")!, timeout: .seconds(30))
            try await Task.sleep(for: .seconds(10))
            let seconds = 20
            let viewer = try BrowserWebRTCTests.page(server, "role=play&stream=live/lossy-hub", seconds: seconds)
            let flv = try await BrowserWHIPHubTests.Decoded.read("\(server.httpURL)/live/lossy-hub.flv", seconds: seconds)
            let w = try await viewer.jsonResult(Stats.self, timeout: .seconds(Int64(seconds) + 60))
            let deadline = ContinuousClock.now + .seconds(40)
            while BrowserWHIPHubTests.samples(publisher).count < 2, ContinuousClock.now < deadline { try await Task.sleep(for: .seconds(1)) }
            let samples = BrowserWHIPHubTests.samples(publisher)
            try #require(samples.count == 2, "the publisher's samples: \(publisher.errorOutput.suffix(1500))")
            let encodedFPS = Double(samples[1].f - samples[0].f) / (samples[1].t - samples[0].t)
            print("publisher: " + publisher.errorOutput.split(separator: "\n").filter { $0.contains("script-at") }.joined(separator: "\n"))
            let dropped = try await ns.droppedOutgoing()
            let api = try await HTTPGet.fetch(port: server.ports.http, "/api/v1/webrtc/streams").text
            let freezeShare = (w.totalFreezesDuration ?? 0) / Double(seconds)
            print("""
                5 % loss from a bridged publisher: \(dropped.other) packets dropped; \(Self.counter("nacksToPublisher", in: api)) asked for again, \
                \(Self.counter("recoveredFromPublisher", in: api)) recovered; ingest given up \(Self.counter("framesGivenUp", in: api)), \
                without keyframe \(Self.counter("framesWithoutKeyframe", in: api)), keyframe requests \(Self.counter("keyframeRequests", in: api)); \
                encoded \(String(format: "%.1f", encodedFPS)) fps; HTTP-FLV \(flv.times.count) frames over \(String(format: "%.1f", flv.span)) s, \
                \(String(format: "%.1f", flv.fps)) fps (\(String(format: "%.1f", flv.fps / encodedFPS * 100)) %), longest gap \(String(format: "%.3f", flv.maxGap)) s; \
                WHEP \(w.framesDecoded ?? 0) frames decoded, \(w.freezeCount ?? 0) freezes, frozen \(String(format: "%.1f", freezeShare * 100)) % of the time, \
                lost \(w.videoPacketsLost ?? 0) of \(w.videoPacketsReceived ?? 0), \(w.pliCount ?? 0) PLIs
                """)
            #expect(dropped.other > 50, "the path lost packets")
            // NACK brings the lost packets back well within the ingest's 350 ms wait: a frame given up is a bug (one
            // was: the wait was counted in milliseconds against seconds, and holes were given up at once).
            #expect(Self.counter("framesGivenUp", in: api) <= 2, "\(api)")
            #expect(flv.span >= 18, "HTTP-FLV: \(flv.span) s of video")
            #expect(flv.fps >= 0.95 * encodedFPS, "HTTP-FLV: \(flv.fps) fps decoded against \(encodedFPS) encoded")
            #expect(w.connection == "connected" && w.error == nil, "WHEP viewer: \(w.error ?? w.connection)")
            #expect(freezeShare < 0.02, "the WHEP viewer was frozen \(freezeShare * 100) % of the time")
        }
    }
}
