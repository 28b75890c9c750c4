import DTLS
import Foundation
import RTP
import SRTP
import STUN
import Testing
import TestSupport

/// The SFU's forwarding with our own clients on both ends (ICE, DTLS and SRTP from our modules, offers from
/// Chromium's fixtures): what a viewer receives is exactly what the publisher sent, renumbered for the viewer;
/// the viewer's join asks the publisher for a keyframe; a NACK is answered from the buffer; sender reports
/// arrive in the viewer's numbering.
@Suite(.serialized, .timeLimit(.minutes(5))) struct SFUForwardingTests {
    /// These publishers send VP8: the SFU alone, without the hub ingest (which would have the answer take H.264).
    static func server() async throws -> TestServer {
        try await TestServer.start { $0.webRTC.whipToHub = false }
    }

    /// One end: a UDP socket or an ICE-TCP connection that passed ICE and DTLS, with SRTP contexts.
    struct Peer {
        let link: any PeerLink
        let protect: SRTPContext
        let unprotect: SRTPContext
        let answer: String
        /// The WHIP/WHEP resource (DELETE ends the session).
        var location: String? = nil
        /// The association, connected: a DTLS record from the server (close_notify) goes through it.
        var dtls: DTLSSession? = nil

        func send(_ packet: [UInt8], rtcp: Bool = false) async throws {
            var p = packet
            if rtcp { try protect.protectRTCP(&p) } else { try protect.protectRTP(&p) }
            try await link.send(p)
        }

        /// RTP packets protected and sent at once (one `sendmmsg` on UDP: one read burst at the server).
        func send(burst packets: [[UInt8]]) async throws {
            try await link.send(burst: try packets.map { p in
                var p = p
                try protect.protectRTP(&p)
                return p
            })
        }

        /// The next RTP or RTCP packet, unprotected (STUN and DTLS skipped). `lose` drops RTP packets by their
        /// (clear) sequence number before SRTP sees them, as the network would.
        func receive(timeout: Duration = .seconds(3), lose: (UInt16) -> Bool = { _ in false }) async throws -> (packet: [UInt8], rtcp: Bool)? {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                guard var p = await link.receive(timeout: deadline - ContinuousClock.now), let first = p.first, (128...191).contains(first) else { continue }
                let rtcp = RTPPacket.isRTCP(p)
                if !rtcp && p.count >= 4 && lose(UInt16(p[2]) << 8 | UInt16(p[3])) { continue }
                do {
                    if rtcp { try unprotect.unprotectRTCP(&p) } else { try unprotect.unprotectRTP(&p) }
                } catch {
                    continue
                }
                return (p, rtcp)
            }
            return nil
        }

        func answerAttribute(_ prefix: String, in kind: String) -> String? {
            let lines = answer.components(separatedBy: "\r\n")
            guard let start = lines.firstIndex(where: { $0.hasPrefix("m=\(kind)") }) else { return nil }
            return lines[start...].dropFirst().prefix { !$0.hasPrefix("m=") }.first { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
        }
    }

    /// A WHIP or WHEP session from `offer`, over UDP, or over ICE-TCP with `tcp`.
    static func connect(_ server: TestServer, path: String, offer: String, tcp: Bool = false) async throws -> Peer {
        try await connect(http: server.ports.http, media: tcp ? try #require(server.ports.rtcTCP) : server.ports.rtcUDP, path: path,
                          offer: offer, tcp: tcp)
    }

    /// The same with the server's HTTP port and its media port (UDP, or TCP with `tcp`) given.
    static func connect(http: Int, media: Int, path: String, offer: String, tcp: Bool = false) async throws -> Peer {
        let certificate = try Certificate()
        let body = offer.replacingOccurrences(of: #"a=fingerprint:sha-256 [0-9A-F:]+"#, with: "a=fingerprint:\(certificate.fingerprint.sdpValue)",
                                              options: .regularExpression)
        let r = try await HTTPGet.fetch(port: http, path, method: "POST", headers: ["Content-Type": "application/sdp"], body: body)
        guard r.status == 201 else { throw TestFailure("\(path): \(r.status) \(r.text)") }
        let lines = r.text.components(separatedBy: "\r\n")
        func attr(_ name: String) -> String? { lines.first { $0.hasPrefix("a=\(name):") }.map { String($0.dropFirst(name.count + 3)) } }
        let ufrag = try #require(attr("ice-ufrag")), password = try #require(attr("ice-pwd"))
        let remoteUfrag = try #require(body.components(separatedBy: "\r\n").first { $0.hasPrefix("a=ice-ufrag:") }?.dropFirst(12))
        let link: any PeerLink = tcp ? try await FramedTCPLink.connect(port: media)
                                     : UDPLink(socket: try await UDPTestClient.open(), port: media)
        let check = Message(type: .bindingRequest, transactionID: (0..<12).map { _ in UInt8.random(in: 0...255) })
            .adding(.username, Array("\(ufrag):\(remoteUfrag)".utf8)).adding(.iceControlling, [UInt8](repeating: 1, count: 8))
            .adding(.useCandidate, []).encode(integrityKey: Array(password.utf8), fingerprint: true)
        // Sent again when unanswered, as an ICE agent does (a loaded server, an AddressSanitizer build).
        var answered = false
        for _ in 0..<3 where !answered {
            try await link.send(check)
            answered = await link.receive(timeout: .seconds(2)) != nil
        }
        try #require(answered, "no answer to the ICE check")
        let fingerprintValue = try #require(attr("fingerprint"))
        let serverFingerprint = try #require(Fingerprint(sdp: fingerprintValue))
        let dtls = try DTLSSession(certificate: certificate, role: .client, peerFingerprint: serverFingerprint)
        try await WebRTCTransportTests.handshake(dtls, over: link)
        guard case .connected(let keys) = dtls.state else { throw TestFailure("DTLS: \(dtls.state)") }
        return Peer(link: link, protect: try SRTPContext(profile: keys.profile, masterKey: keys.local, direction: .outbound),
                    unprotect: try SRTPContext(profile: keys.profile, masterKey: keys.remote, direction: .inbound),
                    answer: r.text, location: r.headers["location"], dtls: dtls)
    }

    static let videoSSRC: UInt32 = 4_035_889_978  // from the publish offer fixture

    static func vp8(seq: UInt16, ts: UInt32) -> [UInt8] {
        var h = RTPHeader(marker: seq % 5 == 4, payloadType: 96, sequenceNumber: seq, timestamp: ts, ssrc: videoSSRC)
        h.extensions = [.init(id: 4, value: Array("1".utf8))]  // mid, which must not reach the viewer
        return RTPPacket(header: h, payload: ArraySlice([0x10, 0x00] + (0..<200).map { UInt8(truncatingIfNeeded: Int(seq) &* 31 &+ $0) })).write()
    }

    static let videoRTXSSRC: UInt32 = 1_321_450_000  // the offer's ssrc-group FID

    /// RTX (RFC 4588) for the publisher's video: payload type 97, its own SSRC and numbering, the original
    /// sequence number first in the payload, then the original payload; `padding` bytes of padding.
    static func rtx(_ original: [UInt8], seq: UInt16, padding: Int = 0) throws -> [UInt8] {
        let o = try RTPPacket(parsing: original)
        let h = RTPHeader(marker: o.header.marker, payloadType: 97, sequenceNumber: seq, timestamp: o.header.timestamp, ssrc: videoRTXSSRC)
        let osn = [UInt8(o.header.sequenceNumber >> 8), UInt8(o.header.sequenceNumber & 0xFF)]
        return RTPPacket(header: h, payload: ArraySlice(padding > 0 && o.payload.isEmpty ? [] : osn + o.payload), padding: padding).write()
    }

    /// A packet lost between the publisher and LiveSwarm is asked for at once (a NACK to the publisher); its
    /// retransmission on the RTX SSRC reaches the viewer as the original; a second copy, and RTX that is only
    /// padding (bandwidth probing), go no further.
    ///
    /// The server asks at most 10 times, a round trip apart (20 ms at least), for at most a second, then gives the
    /// packet up (`NackRequester`): a run in which this test took too long to answer (a loaded machine: it failed
    /// once so, 10 NACKs sent and nothing recovered, in 8.9 s under the whole suite in parallel) cannot see the
    /// repair, and goes again once with a fresh server when its answer came over 150 ms after the first packet.
    @Test func lossOnTheWayInIsAskedForAndFilledByRTX() async throws {
        for attempt in 1...2 {
            let server = try await Self.server()
            defer { Task { await server.stop() } }
            let publisher = try await Self.connect(server, path: "/whip/live/in", offer: WHIPTests.offer)
            defer { publisher.link.close() }
            let viewer = try await Self.connect(server, path: "/whep/live/in", offer: WHIPTests.playOffer)
            defer { viewer.link.close() }
            let sent = (0..<12).map { Self.vp8(seq: UInt16(100 + $0), ts: 9000 * UInt32($0)) }
            let started = ContinuousClock.now
            for (i, p) in sent.enumerated() where i != 5 && i < 10 { try await publisher.send(p) }  // 105 lost on the way in

            var nack: GenericNACK?
            while nack == nil, let (p, rtcp) = try await publisher.receive(timeout: .seconds(2)) {
                guard rtcp else { continue }
                for case .nack(let n) in try RTCPPacket.parseCompound(p) { nack = n }
            }
            #expect(nack?.mediaSSRC == Self.videoSSRC && nack?.lost == [105], "\(String(describing: nack))")

            try await publisher.send(try Self.rtx(sent[5], seq: 7000))
            let answered = ContinuousClock.now - started
            try await publisher.send(try Self.rtx(sent[5], seq: 7001))  // the same again
            try await publisher.send(RTPPacket(header: RTPHeader(payloadType: 97, sequenceNumber: 7002, timestamp: 0, ssrc: Self.videoRTXSSRC),
                                               payload: [], padding: 224).write())
            try await publisher.send(sent[10])
            var received: [RTPPacket] = []
            while received.count < 11, let (p, rtcp) = try await viewer.receive(timeout: .seconds(2)) {
                if !rtcp { received.append(try RTPPacket(parsing: p)) }
            }
            let api = try await HTTPGet.fetch(port: server.ports.http, "/api/v1/webrtc/streams").text
            if !api.contains("\"recoveredFromPublisher\":1") && answered > .milliseconds(150) {
                print("the RTX went \(answered) after the first packet, when the server had given up: \(attempt == 1 ? "again" : "not judged")")
                if attempt == 1 { continue }
                withKnownIssue("the test answered the NACK after \(answered), too late twice", isIntermittent: true) {
                    #expect(api.contains("\"recoveredFromPublisher\":1"), "\(api)")
                }
                return
            }
            let payloads = received.map(\.payload)
            let expected = try [0, 1, 2, 3, 4, 6, 7, 8, 9, 5, 10].map { try RTPPacket(parsing: sent[$0]).payload }
            let order = received.map { r in expected.firstIndex(of: r.payload) ?? -1 }
            #expect(payloads == expected, "the viewer got packets \(order)")
            let first = try #require(received.first).header.sequenceNumber
            #expect(received.count == 11 && received[9].header.sequenceNumber == first &+ 5, "the retransmission carries the original's place")
            let extra = try await viewer.receive(timeout: .milliseconds(300))
            #expect(extra == nil || extra!.rtcp, "no duplicate and no padding reached the viewer")
            #expect(api.contains("\"recoveredFromPublisher\":1"), "\(api)")
            return
        }
    }

    /// A viewer that offers NACK without RTX gets the lost packets again as they were: same SSRC, same number.
    @Test func viewerWithoutRTXGetsPlainRetransmissions() async throws {
        let server = try await Self.server()
        defer { Task { await server.stop() } }
        let publisher = try await Self.connect(server, path: "/whip/live/plain", offer: WHIPTests.offer)
        defer { publisher.link.close() }
        let noRTX = WHIPTests.playOffer.replacingOccurrences(of: "a=rtpmap:97 rtx/90000\r\n", with: "")
            .replacingOccurrences(of: "a=fmtp:97 apt=96\r\n", with: "")
        let viewer = try await Self.connect(server, path: "/whep/live/plain", offer: noRTX)
        defer { viewer.link.close() }
        #expect(!viewer.answer.contains("rtx/") && !viewer.answer.contains("ssrc-group"))
        let viewerSSRC = try #require(viewer.answerAttribute("a=ssrc:", in: "video")?.split(separator: " ").first.flatMap { UInt32($0) })
        let sent = (0..<5).map { Self.vp8(seq: UInt16(500 + $0), ts: 3000 * UInt32($0)) }
        for p in sent { try await publisher.send(p) }
        // The path to the viewer loses the third packet.
        var received: [RTPPacket] = []
        var base: UInt16?
        while received.count < 4, let (p, rtcp) = try await viewer.receive(lose: { seq in
            if base == nil { base = seq }
            return seq == base! &+ 2
        }) {
            if !rtcp { received.append(try RTPPacket(parsing: p)) }
        }
        let wanted = try #require(base) &+ 2
        var nack: [UInt8] = []
        RTCPPacket.nack(GenericNACK(senderSSRC: 77, mediaSSRC: viewerSSRC, lost: [wanted])).write(to: &nack)
        try await viewer.send(nack, rtcp: true)
        var again: RTPPacket?
        while again == nil, let (p, rtcp) = try await viewer.receive() {
            if !rtcp { again = try RTPPacket(parsing: p) }
        }
        #expect(again?.header.ssrc == viewerSSRC && again?.header.sequenceNumber == wanted)
        #expect(again?.payload == (try RTPPacket(parsing: sent[2]).payload))
    }

    @Test func viewerGetsRenumberedPacketsKeyframeRequestRetransmissionsAndSenderReports() async throws {
        let server = try await Self.server()
        defer { Task { await server.stop() } }
        let publisher = try await Self.connect(server, path: "/whip/live/fwd", offer: WHIPTests.offer)
        defer { publisher.link.close() }
        let viewer = try await Self.connect(server, path: "/whep/live/fwd", offer: WHIPTests.playOffer)
        defer { viewer.link.close() }
        let viewerSSRC = try #require(viewer.answerAttribute("a=ssrc:", in: "video")?.split(separator: " ").first.flatMap { UInt32($0) })
        let viewerPT = try #require(viewer.answerAttribute("a=rtpmap:", in: "video")?.split(separator: " ").first.flatMap { UInt8($0) })

        // The viewer's arrival asks the publisher for a keyframe.
        var pli: PictureLossIndication?
        while pli == nil, let (p, rtcp) = try await publisher.receive() {
            guard rtcp else { continue }
            for case .pictureLoss(let x) in try RTCPPacket.parseCompound(p) { pli = x }
        }
        #expect(pli?.mediaSSRC == Self.videoSSRC, "a PLI for the publisher's video")

        let sent = (0..<20).map { Self.vp8(seq: UInt16(truncatingIfNeeded: 65530 + $0), ts: 1_000_000 + UInt32($0) * 3000) }
        for p in sent { try await publisher.send(p) }
        // The path to the viewer loses the 4th and the 18th packet.
        var received: [RTPPacket] = []
        var base: UInt16?
        while received.count < sent.count - 2, let (p, rtcp) = try await viewer.receive(lose: { seq in
            if base == nil { base = seq }
            return seq == base! &+ 3 || seq == base! &+ 17
        }) {
            if !rtcp { received.append(try RTPPacket(parsing: p)) }
        }
        #expect(received.count == 18)
        let first = try #require(received.first)
        let lost = [first.header.sequenceNumber &+ 3, first.header.sequenceNumber &+ 17]
        for r in received {
            let i = Int(r.header.sequenceNumber &- first.header.sequenceNumber)
            let original = try RTPPacket(parsing: sent[i])
            #expect(r.header.ssrc == viewerSSRC && r.header.payloadType == viewerPT && r.header.extensions.isEmpty)
            #expect(i < 20, "continuous across the publisher's wrap")
            #expect(r.header.timestamp == first.header.timestamp &+ UInt32(i) * 3000)
            #expect(r.header.marker == original.header.marker && r.payload == original.payload)
        }

        // NACK the two lost ones (in the viewer's numbering): they come, identical to what was sent.
        var nack: [UInt8] = []
        RTCPPacket.nack(GenericNACK(senderSSRC: 77, mediaSSRC: viewerSSRC, lost: lost)).write(to: &nack)
        try await viewer.send(nack, rtcp: true)
        var again: [RTPPacket] = []
        while again.count < 2, let (p, rtcp) = try await viewer.receive() {
            if !rtcp { again.append(try RTPPacket(parsing: p)) }
        }
        // Chromium offered RTX: they come on the answer's RTX SSRC and payload type (RFC 4588), the viewer's
        // sequence number first in the payload, then the original payload.
        let fid = try #require(viewer.answerAttribute("a=ssrc-group:FID ", in: "video")?.split(separator: " ").compactMap { UInt32($0) })
        let rtxPT = try #require(viewer.answer.components(separatedBy: "\r\n").first { $0.hasSuffix(" apt=\(viewerPT)") }
            .flatMap { UInt8($0.dropFirst(7).prefix { $0.isNumber }) })
        #expect(fid.first == viewerSSRC && fid.count == 2)
        #expect(again.allSatisfy { $0.header.ssrc == fid.last && $0.header.payloadType == rtxPT })
        #expect(again.count == 2 && again[1].header.sequenceNumber == again[0].header.sequenceNumber &+ 1, "the RTX stream's own numbering")
        #expect(again.map { UInt16($0.payload[$0.payload.startIndex]) << 8 | UInt16($0.payload[$0.payload.startIndex + 1]) } == lost)
        #expect(try again.map { Array($0.payload.dropFirst(2)) } == [Array(RTPPacket(parsing: sent[3]).payload), Array(RTPPacket(parsing: sent[17]).payload)])

        // A packet that fails SRTP authentication is dropped at the publisher's transport, never forwarded.
        var forged = Self.vp8(seq: 20, ts: 2_000_000)
        try publisher.protect.protectRTP(&forged)
        forged[forged.count - 1] ^= 0x55
        try await publisher.link.send(forged)
        let next = Self.vp8(seq: 21, ts: 2_003_000)
        try await publisher.send(next)
        var afterForgery: [RTPPacket] = []
        while afterForgery.isEmpty, let (p, rtcp) = try await viewer.receive() {
            if !rtcp { afterForgery.append(try RTPPacket(parsing: p)) }
        }
        #expect(afterForgery.map(\.payload) == [try RTPPacket(parsing: next).payload], "only the authentic packet arrives")

        // The publisher's SR reaches the viewer with the viewer's SSRC and RTP clock.
        var sr: [UInt8] = []
        RTCPPacket.senderReport(SenderReport(ssrc: Self.videoSSRC, ntpTimestamp: 0xE8F1_2345_6789_0000, rtpTimestamp: 1_000_000,
                                             packetCount: 20, octetCount: 4000)).write(to: &sr)
        try await publisher.send(sr, rtcp: true)
        var report: SenderReport?
        while report == nil, let (p, rtcp) = try await viewer.receive() {
            guard rtcp else { continue }
            for case .senderReport(let x) in try RTCPPacket.parseCompound(p) { report = x }
        }
        #expect(report?.ssrc == viewerSSRC && report?.ntpTimestamp == 0xE8F1_2345_6789_0000)
        #expect(report?.rtpTimestamp == first.header.timestamp, "the SR's RTP time maps like the packets'")
        #expect(report?.packetCount == 21, "authentic packets only; retransmissions are not counted")

        // The publisher gets receiver reports (about one a second) for its video: 65530 to 13 and 21 arrived, so
        // 14 to 20 are lost (the forged 20 among them), the highest is 21 after one wrap, and LSR is the middle
        // of the SR's NTP time.
        var block: ReceptionReport?
        let deadline = ContinuousClock.now + .seconds(4)
        while block?.lastSR != 0x2345_6789, ContinuousClock.now < deadline, let (p, rtcp) = try await publisher.receive() {
            guard rtcp else { continue }
            for case .receiverReport(let rr) in try RTCPPacket.parseCompound(p) { block = rr.reports.first { $0.ssrc == Self.videoSSRC } ?? block }
        }
        #expect(block?.highestSequence == 65536 + 21 && block?.cumulativeLost == 7, "\(String(describing: block))")
        #expect(block?.lastSR == 0x2345_6789 && (block?.delaySinceLastSR ?? .max) < 2 * 65536)
    }

    /// The RTP packets (RTCP skipped) a viewer receives until it has `count`, or nothing more comes within `timeout`.
    static func receiveRTP(_ count: Int, at viewer: Peer, timeout: Duration = .seconds(3)) async throws -> [RTPPacket] {
        var received: [RTPPacket] = []
        while received.count < count, let (p, rtcp) = try await viewer.receive(timeout: timeout) {
            if !rtcp { received.append(try RTPPacket(parsing: p)) }
        }
        return received
    }

    /// A publisher's packets that reach the server in one read (a frame's packets, which a browser's pacer sends
    /// together) leave for each viewer together, as one segmented message (UDP GSO), in order.
    @Test func aPublishersBurstReachesEachViewerTogetherAndInOrder() async throws {
        let server = try await Self.server()
        defer { Task { await server.stop() } }
        let publisher = try await Self.connect(server, path: "/whip/live/burst", offer: WHIPTests.offer)
        defer { publisher.link.close() }
        let viewers = [try await Self.connect(server, path: "/whep/live/burst", offer: WHIPTests.playOffer),
                       try await Self.connect(server, path: "/whep/live/burst", offer: WHIPTests.playOffer)]
        defer { for v in viewers { v.link.close() } }
        let sent = (0..<80).map { Self.vp8(seq: UInt16(1000 + $0), ts: 3000 * UInt32($0 / 4)) }
        for burst in stride(from: 0, to: sent.count, by: 4) {
            try await publisher.send(burst: Array(sent[burst..<burst + 4]))
            try await Task.sleep(for: .milliseconds(10))
        }
        for v in viewers {
            let received = try await Self.receiveRTP(sent.count, at: v)
            #expect(received.count == sent.count)
            let first = try #require(received.first)
            for (i, r) in received.enumerated() {
                #expect(r.header.sequenceNumber == first.header.sequenceNumber &+ UInt16(i), "in order")
                #expect(r.payload == (try RTPPacket(parsing: sent[i]).payload))
            }
        }
        // 20 bursts of 4 to 2 viewers: without holding the fan-outs' flush to the end of the read, each packet's
        // two copies left alone, to two viewers, and nothing was ever segmented.
        let segmented = try await server.metric("liveswarm_rtc_segmented_datagrams_total") ?? 0
        print("a publisher's bursts: \(Int(segmented)) of \(2 * sent.count) datagrams left inside segmented messages")
        #expect(segmented >= 8, "several bursts reached their viewers as segmented runs")
    }

    /// A publisher on ICE-TCP: its packets do not come in the UDP socket's reads, so each fan-out flushes itself and
    /// every packet reaches the UDP viewers at once (a fan-out that left the flush to the next UDP read held them
    /// until a viewer's next RTCP).
    @Test func anICETCPPublishersPacketsReachUDPViewersAtOnce() async throws {
        let server = try await Self.server()
        defer { Task { await server.stop() } }
        let publisher = try await Self.connect(server, path: "/whip/live/tcp", offer: WHIPTests.offer, tcp: true)
        defer { publisher.link.close() }
        let viewers = [try await Self.connect(server, path: "/whep/live/tcp", offer: WHIPTests.playOffer),
                       try await Self.connect(server, path: "/whep/live/tcp", offer: WHIPTests.playOffer)]
        defer { for v in viewers { v.link.close() } }
        let sent = (0..<24).map { Self.vp8(seq: UInt16(2000 + $0), ts: 3000 * UInt32($0)) }
        for i in 0..<12 {
            try await publisher.send(sent[i])
            for v in viewers {
                let got = try await Self.receiveRTP(1, at: v, timeout: .milliseconds(500))
                #expect(got.first?.payload == (try RTPPacket(parsing: sent[i]).payload), "packet \(i) at once")
            }
        }
        // Several packets in one TCP segment.
        try await publisher.send(burst: Array(sent[12...]))
        for v in viewers {
            let got = try await Self.receiveRTP(12, at: v, timeout: .milliseconds(500))
            #expect(try got.map(\.payload) == sent[12...].map { try RTPPacket(parsing: $0).payload })
        }
    }
}
