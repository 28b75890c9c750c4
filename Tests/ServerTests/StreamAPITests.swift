import Foundation
import NIOCore
import RTMP
import Server
import StreamHub
import Testing
import TestSupport

/// `/api/v1/streams`, `/metrics`, and what a stream carries that we do not parse.
@Suite(.serialized, .timeLimit(.minutes(5))) struct StreamAPITests {
    /// The AVC sequence header ffmpeg 5.1 (libx264, 640x360 High) writes, and its AAC-LC 44.1 kHz mono config.
    static let avcConfig: [UInt8] = [UInt8](hex: "17000000000164001effe1001a6764001eacd940a02ff970110000030001000003003c0f162d9601000468ef8fcbfdf8f800")
    static let aacConfig: [UInt8] = [UInt8](hex: "af00120856e500")

    struct StreamList: Decodable { var streams: [StreamSnapshot] }
    struct Detail: Decodable { var stream: StreamSnapshot; var viewers: [ViewerStats] }

    @Test func apiAndMetricsDescribeLiveStreams() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let publisher = try await RTMPTestClient.connect(port: server.ports.rtmp)
        #expect(try await publisher.publish("api") == "NetStream.Publish.Start")
        try await publisher.send(Message(type: .video, streamID: 1, timestamp: 0, payload: ByteBuffer(bytes: Self.avcConfig)), csid: 7)
        try await publisher.send(Message(type: .audio, streamID: 1, timestamp: 0, payload: ByteBuffer(bytes: Self.aacConfig)), csid: 6)
        try await publisher.sendVideo(from: 0, count: 50, gop: 50, size: 5000)
        let flv = try await FLVTestClient.open(port: server.ports.http, path: "/live/api.flv")
        let rtmp = try await RTMPTestClient.connect(port: server.ports.rtmp)
        try await rtmp.connectApp()
        try await rtmp.command("createStream")
        _ = try await rtmp.expectCommand(["_result"])
        try await rtmp.command("play", ["api"], streamID: 1)
        #expect(try await rtmp.expectCommand(["onStatus"])?.arguments.first?.objectValue?["code"] == "NetStream.Play.Reset")
        // The RTMP viewer receives the cached GOP.
        var media = 0
        while media < 50, let m = try await rtmp.receive() { if m.type == .video { media += 1 } }
        #expect(media >= 50)

        let list = try JSONDecoder().decode(StreamList.self, from: try await HTTPGet.fetch(port: server.ports.http, "/api/v1/streams").body)
        let s = try #require(list.streams.first)
        #expect(s.app == "live" && s.stream == "api" && s.published)
        #expect(s.info.videoCodec == "h264" && s.info.videoCodecString == "avc1.64001e")
        #expect(s.info.width == 640 && s.info.height == 360)
        #expect(s.info.audioCodec == "aac" && s.info.sampleRate == 44100 && s.info.channels == 1)
        #expect(s.viewers == ["http-flv": 1, "rtmp": 1])
        #expect(s.bytesIn > 50 * 5000)
        #expect(s.publisherProtocol == "rtmp")

        let detail = try JSONDecoder().decode(Detail.self, from: try await HTTPGet.fetch(port: server.ports.http, "/api/v1/streams/live/api").body)
        #expect(detail.viewers.count == 2)
        #expect(detail.viewers.allSatisfy { $0.sentBytes > 50 * 5000 && $0.skips == 0 })

        let metrics = try await HTTPGet.fetch(port: server.ports.http, "/metrics")
        #expect(metrics.headers["content-type"]?.hasPrefix("text/plain") == true)
        func value(_ name: String) -> Double? {
            metrics.text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last!) }
        }
        #expect(value("liveswarm_streams") == 1)
        #expect(value(#"liveswarm_viewers{protocol="rtmp"}"#) == 1)
        #expect(value(#"liveswarm_viewers{protocol="http-flv"}"#) == 1)
        #expect((value(#"liveswarm_bytes_received_total{protocol="rtmp"}"#) ?? 0) > 50 * 5000)
        #expect((value(#"liveswarm_bytes_sent_total{protocol="http-flv"}"#) ?? 0) > 50 * 5000)
        #expect((value(#"liveswarm_connections{protocol="rtmp"}"#) ?? 0) == 2)
        #expect((value(#"liveswarm_connections_total{protocol="http-flv"}"#) ?? 0) >= 1)
        await flv.close()
        await rtmp.tcp.close()
        await publisher.tcp.close()
    }

    /// Enhanced RTMP (HEVC by FourCC): recognised, cached by GOP, and passed through to viewers byte for byte.
    @Test func enhancedRTMPPassesThroughUntouched() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let publisher = try await RTMPTestClient.connect(port: server.ports.rtmp)
        #expect(try await publisher.publish("hevc") == "NetStream.Publish.Start")
        let fourCC: [UInt8] = Array("hvc1".utf8)
        // ExVideoTagHeader: isExHeader | frameType << 4 | packetType, then the FourCC.
        let sequenceStart = [0x80 | 0x10 | 0] + fourCC + [0x01, 0x01, 0x60, 0x00, 0x00, 0x00]
        func frame(key: Bool, _ i: Int) -> [UInt8] {
            // CodedFrames (1) carries a signed 24-bit composition time; use a negative one.
            [0x80 | (key ? 0x10 : 0x20) | 1] + fourCC + [0xFF, 0xFF, 0xD8] + [UInt8](repeating: UInt8(i & 0xFF), count: 300)
        }
        var sent: [[UInt8]] = [sequenceStart]
        try await publisher.send(Message(type: .video, streamID: 1, timestamp: 0, payload: ByteBuffer(bytes: sequenceStart)), csid: 7)
        for i in 0..<40 {
            let f = frame(key: i % 20 == 0, i)
            sent.append(f)
            try await publisher.send(Message(type: .video, streamID: 1, timestamp: UInt32(i * 40), payload: ByteBuffer(bytes: f)), csid: 7)
        }
        try await server.waitForStream(StreamKey(app: "live", stream: "hevc")!)
        // A viewer joining now starts at the second keyframe (frame 20), after the sequence header.
        let viewer = try await FLVTestClient.open(port: server.ports.http, path: "/live/hevc.flv")
        #expect(try await viewer.read(until: { $0.tags.count >= 21 }))
        let got = viewer.tags.map { Array($0.tag.body.readableBytesView) }
        #expect(got.first == sequenceStart)
        #expect(Array(got.dropFirst().prefix(20)) == Array(sent[21...40]))
        let snap = try #require(server.swarm.hub.snapshot().first)
        #expect(snap.info.videoCodec == "hevc")
        #expect(snap.info.videoCodecString == nil)  // we do not derive HEVC codec strings: not misparsed as AVC
        await viewer.close()
        await publisher.tcp.close()
    }
}
