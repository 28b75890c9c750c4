import Audio
import Foundation
import NIOCore
import RTMP
import RTP
import Testing
import TestSupport

/// The bridge's audio with our own clients on both ends: an RTMP publisher sending ffmpeg's AAC (the audio
/// fixtures), WHEP viewers (ICE, DTLS, SRTP from our modules) that decode the Opus they get with libopus and listen
/// to it, and read the sender reports that tie audio and video to one clock.
@Suite(.serialized, .timeLimit(.minutes(5))) struct BridgeAudioTests {
    static func audio(_ c: RTMPTestClient, _ ts: UInt32, _ body: [UInt8]) async throws {
        try await c.send(Message(type: .audio, streamID: 1, timestamp: ts, payload: ByteBuffer(bytes: body)), csid: 6)
    }

    static func aacConfig(_ asc: [UInt8]) -> [UInt8] { [0xAF, 0x00] + asc }
    static func aacFrame(_ au: [UInt8]) -> [UInt8] { [0xAF, 0x01] + au }

    /// Sends audio access units (already FLV bodies) and, up to `videoUntil`, a picture every 40 ms from
    /// `firstPicture` (an IDR every 25), in timestamp order and at the pace of the timestamps.
    static func publish(_ pub: RTMPTestClient, audio: [(Int64, [UInt8])], videoUntil: Int64? = nil, firstPicture: Int = 0,
                        realTime: Bool = true) async throws {
        var events: [(ts: Int64, video: Bool, body: [UInt8])] = audio.map { ($0.0, false, $0.1) }
        if let videoUntil {
            var i = firstPicture
            while Int64(i * 40) < videoUntil {
                events.append((Int64(i * 40), true, BridgeTests.frame(key: i % 25 == 0, [BridgeTests.slice(i, key: i % 25 == 0)])))
                i += 1
            }
        }
        events.sort { $0.ts < $1.ts }
        let start = ContinuousClock.now
        let base = events.first?.ts ?? 0
        for e in events {
            if realTime { try await Task.sleep(until: start + .milliseconds(e.ts - base)) }
            if e.video { try await BridgeTests.video(pub, UInt32(e.ts), e.body) } else { try await Self.audio(pub, UInt32(e.ts), e.body) }
        }
    }

    /// A publisher of `live/NAME` that has sent the video's sequence header, `audio` (an FLV audio body: an AAC
    /// sequence header, or another codec's frame) and a first keyframe at time 0; the stream is live when it returns.
    static func publisher(_ server: TestServer, _ name: String, audio: [UInt8]) async throws -> RTMPTestClient {
        let pub = try await BridgeTests.publisher(server, name)
        try await BridgeTests.video(pub, 0, BridgeTests.config())
        try await Self.audio(pub, 0, audio)
        try await BridgeTests.video(pub, 0, BridgeTests.frame(key: true, [BridgeTests.slice(0, key: true)]))
        try await server.waitForStream(.init(app: "live", stream: name)!)
        return pub
    }

    static func frames(_ s: AACStream, offset: Int64 = 0) -> [(Int64, [UInt8])] {
        s.accessUnits.map { ($0.timestamp + offset, Self.aacFrame($0.bytes)) }
    }

    /// A WHEP viewer taking audio and video: the Opus packets, the pictures (depacketized) and the latest sender
    /// report of each SSRC.
    final class AVViewer: @unchecked Sendable {
        let peer: SFUForwardingTests.Peer
        var audio: [RTPPacket] = []
        var depacketizer = H264Depacketizer()
        var units: [H264Depacketizer.AccessUnit] = []
        var failures: [H264Depacketizer.Failure] = []
        var reports: [UInt32: SenderReport] = [:]

        init(_ peer: SFUForwardingTests.Peer) { self.peer = peer }

        static func connect(_ server: TestServer, _ stream: String) async throws -> AVViewer {
            AVViewer(try await SFUForwardingTests.connect(server, path: "/whep/\(stream)", offer: WHIPTests.playOffer))
        }

        func ssrc(_ kind: String) -> UInt32? { peer.answerAttribute("a=ssrc:", in: kind)?.split(separator: " ").first.flatMap { UInt32($0) } }
        func payloadType(_ kind: String) -> UInt8? { peer.answerAttribute("a=rtpmap:", in: kind)?.split(separator: " ").first.flatMap { UInt8($0) } }

        /// Reads until `done` holds or nothing comes for `timeout`.
        func read(timeout: Duration = .seconds(1), until done: (AVViewer) -> Bool = { _ in false }) async throws {
            let (audioSSRC, videoSSRC) = (ssrc("audio"), ssrc("video"))
            while !done(self), let (p, rtcp) = try await peer.receive(timeout: timeout) {
                if rtcp {
                    for case .senderReport(let r) in (try? RTCPPacket.parseCompound(p)) ?? [] { reports[r.ssrc] = r }
                    continue
                }
                let packet = try RTPPacket(parsing: p)
                if packet.header.ssrc == audioSSRC && audioSSRC != nil {
                    audio.append(packet)
                } else if packet.header.ssrc == videoSSRC && videoSSRC != nil {
                    do {
                        if let au = try depacketizer.push(sequenceNumber: packet.header.sequenceNumber, timestamp: packet.header.timestamp,
                                                          marker: packet.header.marker, payload: packet.payload) { units.append(au) }
                    } catch {
                        failures.append(error)
                    }
                }
            }
        }

        /// What the audio sounds like: every packet decoded in order.
        func heard() throws -> [Float] {
            let decoder = try OpusDecoder()
            var pcm: [Float] = []
            for p in audio { pcm += try decoder.decode(Array(p.payload)) }
            return pcm
        }

        /// The picture number a unit carries (`BridgeTests.slice`: its second byte).
        static func picture(_ au: H264Depacketizer.AccessUnit) -> Int? { au.nalUnits.last.flatMap { $0.count > 1 ? Int($0[1]) : nil } }

        func delete(_ server: TestServer) async throws {
            guard let location = peer.location else { throw TestFailure("no WHEP resource") }
            _ = try await HTTPGet.fetch(port: server.ports.http, location, method: "DELETE")
        }

        func close() { peer.link.close() }
    }

    struct API: Decodable {
        struct Audio: Decodable {
            var codec: String?
            var inputRate: Int
            var inputChannels: Int
            var bitrate: Int
            var accessUnits: Int
            var decodeErrors: Int
            var packets: Int
            var silenceMs: Double
            var restarts: Int
        }
        struct Stream: Decodable {
            var stream: String
            var viewers: Int
            var framesSent: Int
            var audioViewers: Int
            var audioPacketsSent: Int
            var audio: Audio?
            var warnings: [String]
        }
        var bridged: [Stream]
        var audioTranscoders: Int
    }

    static func api(_ server: TestServer) async throws -> API {
        try JSONDecoder().decode(API.self, from: Data(try await HTTPGet.fetch(port: server.ports.http, "/api/v1/webrtc/streams").text.utf8))
    }

    /// Checks one viewer's audio RTP stream: its SSRC and payload type, consecutive sequence numbers, 20 ms apart
    /// (960 ticks) except after a gap, a marker on the first packet.
    static func expectOneStream(_ v: AVViewer, gaps: Int = 0, sourceLocation: SourceLocation = #_sourceLocation) {
        let packets = v.audio
        #expect(packets.allSatisfy { $0.header.ssrc == v.ssrc("audio") && $0.header.payloadType == v.payloadType("audio") }, sourceLocation: sourceLocation)
        let seqs = packets.map(\.header.sequenceNumber)
        #expect(zip(seqs, seqs.dropFirst()).allSatisfy { $1 == $0 &+ 1 }, "sequence numbers \(seqs)", sourceLocation: sourceLocation)
        let steps = zip(packets, packets.dropFirst()).map { $1.header.timestamp &- $0.header.timestamp }
        #expect(steps.filter { $0 != 960 }.count == gaps, "timestamp steps \(steps.filter { $0 != 960 })", sourceLocation: sourceLocation)
        #expect(packets.first?.header.marker == true, sourceLocation: sourceLocation)
    }

    /// Two viewers of a stream with AAC: the answer accepts audio as stereo Opus, each viewer gets a clean 1 kHz
    /// tone in its own RTP stream, both from one transcoder (the same Opus bytes; every access unit decoded once),
    /// which stops when the last viewer leaves.
    @Test func aacReachesEveryViewerAsOneOpusStream() async throws {
        let tone = try AACStream.fixture("sine-1000hz-44100-stereo.flv")
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let pub = try await Self.publisher(server, "tone", audio: Self.aacConfig(tone.config))
        let a = try await AVViewer.connect(server, "live/tone"), b = try await AVViewer.connect(server, "live/tone")
        defer { a.close(); b.close() }
        #expect(a.peer.answerAttribute("a=rtpmap:", in: "audio")?.hasSuffix(" opus/48000/2") == true)
        let fmtp = a.peer.answerAttribute("a=fmtp:\(a.payloadType("audio") ?? 0) ", in: "audio") ?? ""
        #expect(fmtp.contains("stereo=1") && fmtp.contains("sprop-stereo=1") && fmtp.contains("useinbandfec=1"), "\(fmtp)")
        #expect(a.peer.answerAttribute("a=msid:", in: "audio")?.split(separator: " ").first == a.peer.answerAttribute("a=msid:", in: "video")?.split(separator: " ").first,
                "audio and video in one media stream, so the browser syncs them")

        try await Self.publish(pub, audio: Self.frames(tone), videoUntil: 1000, firstPicture: 1)
        try await a.read()
        try await b.read()
        #expect(a.audio.count >= 45, "\(a.audio.count) packets for 1 s")
        Self.expectOneStream(a)
        Self.expectOneStream(b)
        let heard = ToneAnalysis(try a.heard(), expected: 1000, amplitude: 0.125 / 2.squareRoot())
        #expect(abs(heard.frequency - 1000) < 2 && heard.clicks == 0 && heard.gaps == 0, "\(heard)")
        #expect(a.audio.map(\.payload) == b.audio.map(\.payload), "both viewers get the same Opus packets")
        #expect(a.ssrc("audio") != b.ssrc("audio"))
        #expect(a.units.count == 25 && a.failures.isEmpty, "the video went on: \(a.units.count) pictures")

        let api = try await Self.api(server)
        let s = try #require(api.bridged.first)
        #expect(api.audioTranscoders == 1 && s.audioViewers == 2 && s.audioPacketsSent == a.audio.count + b.audio.count)
        let t = try #require(s.audio)
        #expect(t.codec == "aac" && t.inputRate == 44100 && t.inputChannels == 2 && t.bitrate == 96_000)
        #expect(t.accessUnits == tone.accessUnits.count, "every access unit decoded once for both viewers: \(t.accessUnits)")
        #expect(t.decodeErrors == 0 && t.silenceMs == 0 && t.restarts == 0)

        try await a.delete(server)
        #expect(try await Self.api(server).audioTranscoders == 1, "one viewer still listens")
        try await b.delete(server)
        try await server.waitUntil("the transcoder to stop", timeout: .seconds(5)) { try await Self.api(server).audioTranscoders == 0 }
    }

    /// Lip sync as the browser computes it: the sender reports map each track's RTP time to NTP. The beep's first
    /// loud sample, found in the Opus the viewer decoded and put on NTP through the audio reports, must be where the
    /// publisher put it relative to the pictures, put on NTP through the video reports: within 2 ms.
    @Test func senderReportsPutAudioAndVideoOnOneClock() async throws {
        let beep = try AACStream.fixture("beep-at-1s-44100-stereo.flv")
        // Where the beep is on the stream's timeline: decoded here the way the server decodes it.
        let decoder = try AACDecoder(config: beep.config)
        var reference: [Float] = []
        for au in beep.accessUnits { reference += try decoder.decode(au.bytes) }
        let onsetSample = try #require(stride(from: 0, to: reference.count, by: 2).first { abs(reference[$0]) > 0.25 }) / 2
        let onsetMs = Double(beep.accessUnits[0].timestamp) + Double(onsetSample) / 48

        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let pub = try await Self.publisher(server, "sync", audio: Self.aacConfig(beep.config))
        let v = try await AVViewer.connect(server, "live/sync")
        defer { v.close() }
        try await Self.publish(pub, audio: Self.frames(beep), videoUntil: 2400, firstPicture: 1)
        try await v.read()

        let (audioSSRC, videoSSRC) = (try #require(v.ssrc("audio")), try #require(v.ssrc("video")))
        let (ar, vr) = (try #require(v.reports[audioSSRC], "an audio SR"), try #require(v.reports[videoSSRC], "a video SR"))
        func seconds(_ ntp: UInt64) -> Double { Double(ntp >> 32) + Double(ntp & 0xFFFF_FFFF) / 4_294_967_296 }
        func since(_ rtp: UInt32, _ r: SenderReport, rate: Double) -> Double {
            seconds(r.ntpTimestamp) + Double(Int32(bitPattern: rtp &- r.rtpTimestamp)) / rate
        }
        // The beep as heard: the packet and sample where the decoded Opus first gets loud.
        let decoderOut = try OpusDecoder()
        var heardAt: Double?
        for p in v.audio where heardAt == nil {
            let pcm = try decoderOut.decode(Array(p.payload))
            if let i = stride(from: 0, to: pcm.count, by: 2).first(where: { abs(pcm[pcm.startIndex + $0]) > 0.25 }) {
                heardAt = since(p.header.timestamp &+ UInt32(i / 2), ar, rate: 48000)
            }
        }
        let beepNTP = try #require(heardAt, "the beep was heard")
        // A picture sent at normal speed, and where the beep is relative to it on the publisher's timeline.
        let last = try #require(v.units.last)
        let picture = try #require(AVViewer.picture(last))
        let pictureNTP = since(last.timestamp, vr, rate: 90000)
        let offsetMs = (beepNTP - pictureNTP) * 1000 - (onsetMs - Double(picture * 40))
        print("lip sync through the sender reports: the beep at \(String(format: "%.1f", onsetMs)) ms of the stream is heard "
              + "\(String(format: "%+.2f", offsetMs)) ms from where the pictures put it")
        #expect(abs(offsetMs) < 2, "audio minus video \(offsetMs) ms")
        #expect(vr.packetCount > 0 && ar.packetCount > 0 && ar.octetCount > 0)
    }

    /// A stream with audio and no video: the answer rejects the video section, the audio plays, and the session ends
    /// with the stream.
    @Test func anAudioOnlyStreamPlaysAndEndsWithTheStream() async throws {
        let tone = try AACStream.fixture("sine-1000hz-44100-stereo.flv")
        let server = try await TestServer.start { $0.hub.republishGrace = .milliseconds(500) }
        defer { Task { await server.stop() } }
        let pub = try await BridgeTests.publisher(server, "radio")
        try await Self.audio(pub, 0, Self.aacConfig(tone.config))
        try await Self.audio(pub, 0, Self.aacFrame(tone.accessUnits[0].bytes))
        try await server.waitUntil("live/radio to be live") {
            server.swarm.hub.snapshot().contains { $0.stream == "radio" && $0.published && $0.hasAudio }
        }
        let v = try await AVViewer.connect(server, "live/radio")
        defer { v.close() }
        #expect(v.peer.answer.contains("m=video 0 "), "no video to send")
        #expect(v.ssrc("audio") != nil)
        try await Self.publish(pub, audio: Array(Self.frames(tone).dropFirst()))
        try await v.read()
        Self.expectOneStream(v)
        let heard = ToneAnalysis(try v.heard(), expected: 1000, amplitude: 0.125 / 2.squareRoot())
        #expect(v.audio.count >= 40 && abs(heard.frequency - 1000) < 2 && heard.gaps == 0 && heard.clicks == 0, "\(v.audio.count) packets, \(heard)")

        await pub.tcp.close()
        var alert = false
        let deadline = ContinuousClock.now + .seconds(5)
        while !alert, ContinuousClock.now < deadline, let p = await v.peer.link.receive(timeout: .seconds(1)) {
            alert = p.first == 21  // DTLS close_notify
        }
        #expect(alert, "the session ends with the stream")
        try await server.waitUntil("the transcoder to stop", timeout: .seconds(5)) {
            let api = try await Self.api(server)
            return api.audioTranscoders == 0 && api.bridged.isEmpty
        }
    }

    /// A stream whose audio is not AAC: the viewer gets the video; the answer rejects audio and the API says why.
    @Test func audioOtherThanAACIsNamedAndTheVideoPlays() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let pub = try await Self.publisher(server, "mp3", audio: [0x2F, 0xFF, 0xFB, 0x90, 0x64])  // SoundFormat 2: MP3
        let v = try await AVViewer.connect(server, "live/mp3")
        defer { v.close() }
        #expect(v.peer.answer.contains("m=audio 0 "))
        try await Self.publish(pub, audio: [], videoUntil: 400, firstPicture: 1, realTime: false)
        try await v.read(until: { $0.units.count == 10 })
        #expect(v.units.count == 10)
        let api = try await Self.api(server)
        #expect(api.bridged.first?.warnings.contains { $0.contains("audio is mp3") } == true, "\(api.bridged.first?.warnings ?? [])")
        #expect(api.audioTranscoders == 0)
    }

    /// Bad audio while a viewer watches: a broken AudioSpecificConfig, frames before a usable one, an empty frame,
    /// garbage, then a new configuration at another rate and channel count. The video is untouched; the audio
    /// resumes with the new configuration in the same RTP stream; each problem is named once.
    @Test func badAudioCostsOnlyTheAudioItBreaks() async throws {
        let tone = try AACStream.fixture("sine-1000hz-44100-stereo.flv")
        let low = try AACStream.fixture("sine-440hz-22050-mono.flv")
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let pub = try await Self.publisher(server, "bad", audio: Self.aacConfig(tone.config))
        let v = try await AVViewer.connect(server, "live/bad")
        defer { v.close() }

        var rng = SplitMix64(state: 11)
        var audio: [(Int64, [UInt8])] = [(10, Self.aacConfig([0xFF, 0xFF, 0xFF, 0xFF]))]  // refused: frames after it are too
        audio += Self.frames(tone).prefix(8)
        audio.append((200, Self.aacConfig(tone.config)))
        audio += Self.frames(tone).dropFirst(9).prefix(20)
        audio.append((640, [0xAF, 0x01]))  // an empty AAC frame
        audio.append((660, Self.aacFrame((0..<300).map { _ in UInt8.random(in: 0...255, using: &rng) })))
        audio += Self.frames(tone).dropFirst(31)
        // A new configuration: 22.05 kHz mono from 1100 ms.
        audio.append((1100, Self.aacConfig(low.config)))
        audio += Self.frames(low, offset: 1100)
        try await Self.publish(pub, audio: audio, videoUntil: 2100, firstPicture: 1)
        try await v.read()

        #expect(v.units.count == 53 && v.failures.isEmpty, "every picture: \(v.units.count)")
        #expect(v.units.enumerated().allSatisfy { AVViewer.picture($1) == $0 % 256 })
        let seqs = v.audio.map(\.header.sequenceNumber)
        #expect(Set(v.audio.map(\.header.ssrc)).count == 1 && zip(seqs, seqs.dropFirst()).allSatisfy { $1 == $0 &+ 1 })
        let pcm = try v.heard()
        // The 440 Hz part: from the packets stamped after the new configuration's first access unit.
        let first = try #require(v.audio.first).header.timestamp
        let split = try #require(v.audio.firstIndex { Int64($0.header.timestamp &- first) >= 1100 * 48 })
        let after = ToneAnalysis(pcm[(2 * 960 * (split + 3))...], expected: 440)
        #expect(abs(after.frequency - 440) < 2 && after.gaps == 0, "after the rate change: \(after)")
        let api = try await Self.api(server)
        let s = try #require(api.bridged.first)
        let t = try #require(s.audio)
        #expect(t.inputRate == 22050 && t.inputChannels == 1 && t.decodeErrors >= 2, "\(t)")
        let warnings = s.warnings.joined(separator: "\n")
        #expect(warnings.contains("bad AudioSpecificConfig") && warnings.contains("an empty AAC frame"), "\(warnings)")
        #expect(s.warnings.count == Set(s.warnings).count, "each problem once")
    }

    /// A publisher that drops out and comes back (within the grace period, its timestamps from 0 again): the viewer's
    /// audio goes on in the same RTP stream, its time moved on by the outage.
    @Test func republishKeepsTheAudioStream() async throws {
        let tone = try AACStream.fixture("sine-1000hz-44100-stereo.flv")
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let first = try await Self.publisher(server, "again", audio: Self.aacConfig(tone.config))
        let v = try await AVViewer.connect(server, "live/again")
        defer { v.close() }
        try await Self.publish(first, audio: Array(Self.frames(tone).prefix(22)), videoUntil: 500, firstPicture: 1)
        try await v.read(timeout: .milliseconds(300))
        let before = v.audio.count
        await first.tcp.close()
        try await Task.sleep(for: .milliseconds(500))
        let second = try await BridgeTests.publisher(server, "again")
        try await BridgeTests.video(second, 0, BridgeTests.config())
        try await Self.audio(second, 0, Self.aacConfig(tone.config))
        try await Self.publish(second, audio: Self.frames(tone), videoUntil: 1000)
        try await v.read()
        #expect(before >= 15 && v.audio.count >= before + 40, "\(before) then \(v.audio.count)")
        Self.expectOneStream(v, gaps: 1)
        let jump = v.audio[before].header.timestamp &- v.audio[before - 1].header.timestamp
        #expect(jump >= 500 * 48 && jump < 3000 * 48, "the audio clock moved on by the outage: \(jump) ticks")
        #expect(v.audio[before].header.marker, "a new talkspurt")
    }
}
