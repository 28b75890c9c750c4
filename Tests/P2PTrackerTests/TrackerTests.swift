import Foundation
import P2PTracker
import TestSupport
import Testing

/// The swarm state machine, driven by messages and time, judged on the actions it returns.
@Suite struct TrackerTests {
    static let cam = InfoHash.liveSwarm(stream: "live/cam", epoch: 1)
    static let other = InfoHash.liveSwarm(stream: "live/other", epoch: 1)
    static let names: [InfoHash: String] = [cam: "live/cam", other: "live/other"]

    static func tracker(_ configure: (inout Tracker.Configuration) -> Void = { _ in }) -> Tracker {
        var c = Tracker.Configuration()
        configure(&c)
        return Tracker(configuration: c, namespace: { names[$0] })
    }

    static func peer(_ n: Int) -> PeerID { PeerID(Array("-LS0001-".utf8) + (0..<12).map { UInt8(truncatingIfNeeded: n >> ($0 % 4 * 8)) })! }

    static func str(_ b: Bytes20) -> String {
        TrackerRequestTests.js(b)
    }

    static func announce(_ peer: PeerID, in hash: InfoHash = cam, offers: [String] = [], numwant: Int? = nil,
                         uploaded: Double? = nil, event: String? = nil, extra: String? = nil) -> String {
        var fields = ["\"action\":\"announce\"", "\"info_hash\":\(str(hash))", "\"peer_id\":\(str(peer))"]
        if let extra { fields.append(extra) }
        if let numwant { fields.append("\"numwant\":\(numwant)") }
        if let uploaded { fields.append("\"uploaded\":\(uploaded)") }
        if let event { fields.append("\"event\":\"\(event)\"") }
        if !offers.isEmpty {
            fields.append("\"offers\":[" + offers.map { #"{"offer_id":"\#($0)","offer":{"type":"offer","sdp":"sdp-\#($0)"}}"# }
                .joined(separator: ",") + "]")
        }
        return "{" + fields.joined(separator: ",") + "}"
    }

    static func answer(_ hash: InfoHash = cam, from: PeerID, to: PeerID, offerID: String) -> String {
        "{\"action\":\"announce\",\"info_hash\":\(str(hash)),\"peer_id\":\(str(from)),\"to_peer_id\":\(str(to)),"
            + "\"offer_id\":\"\(offerID)\",\"answer\":{\"type\":\"answer\",\"sdp\":\"answer-\(offerID)\"}}"
    }

    /// Messages sent to `connection`, in order.
    static func sent(_ actions: [Tracker.Action], to connection: Int) -> [TrackerResponse] {
        actions.compactMap { if case .send(connection, let r) = $0 { r } else { nil } }
    }

    static func failures(_ actions: [Tracker.Action]) -> [String] {
        actions.compactMap { if case .send(_, .failure(let reason, _, _)) = $0 { reason } else { nil } }
    }

    @Test func offersAndAnswersAreRelayedBetweenPeersOfOneSwarm() {
        var t = Self.tracker()
        let (a, b) = (Self.peer(1), Self.peer(2))
        t.connected(1, now: 0)
        t.connected(2, now: 0)
        // Alone in the swarm: the offers go nowhere, the reply counts one peer.
        var actions = t.received(Self.announce(a, offers: ["o1", "o2"]), from: 1, now: 0)
        #expect(actions == [.send(1, .announced(infoHash: Self.cam, interval: 20, complete: 0, incomplete: 1,
                                                   stream: "live/cam", peerLimit: 50_000))])
        actions = t.received(Self.announce(b), from: 2, now: 1)
        #expect(Self.failures(actions) == [] && Self.sent(actions, to: 2).count == 1)
        // A's next offers reach B (one each: numwant 1).
        actions = t.received(Self.announce(a, offers: ["o3", "o4"], numwant: 1), from: 1, now: 2)
        #expect(Self.sent(actions, to: 2) == [.offer(infoHash: Self.cam, from: a, offerID: "o3", sdp: "sdp-o3")])
        actions = t.received(Self.answer(from: b, to: a, offerID: "o3"), from: 2, now: 3)
        #expect(actions == [.send(1, .answer(infoHash: Self.cam, from: b, offerID: "o3", sdp: "answer-o3"))])
        #expect(t.statistics.offersRelayed == 1 && t.statistics.answersRelayed == 1 && t.statistics.pendingOffers == 0)
    }

    @Test func anAnswerToAnOfferThatDoesNotExistIsRefused() {
        var t = Self.tracker()
        let (a, b, c, d) = (Self.peer(1), Self.peer(2), Self.peer(3), Self.peer(4))
        for i in 1...4 { t.connected(i, now: 0) }
        _ = t.received(Self.announce(b), from: 2, now: 0)
        _ = t.received(Self.announce(c), from: 3, now: 0)
        let actions = t.received(Self.announce(a, offers: ["o1", "o2"]), from: 1, now: 0)
        // Which offer went to b (connection 2).
        let toB = Self.sent(actions, to: 2).compactMap { if case .offer(_, _, let id, _) = $0 { id } else { nil } }
        #expect(toB.count == 1)
        let forB = toB.first ?? "o1"
        let forC = forB == "o1" ? "o2" : "o1"
        let noSuchOffer = [TrackerError.noSuchOffer.description]
        #expect(Self.failures(t.received(Self.answer(from: b, to: a, offerID: "never"), from: 2, now: 1)) == noSuchOffer)
        #expect(Self.failures(t.received(Self.answer(from: b, to: c, offerID: forB), from: 2, now: 1)) == noSuchOffer,
                "c made no such offer")
        #expect(Self.failures(t.received(Self.answer(from: b, to: a, offerID: forC), from: 2, now: 1)) == noSuchOffer,
                "that offer was for c")
        #expect(Self.failures(t.received(Self.answer(from: d, to: a, offerID: forB), from: 4, now: 1))
                == [TrackerError.notInSwarm.description], "d never announced")
        #expect(Self.failures(t.received(Self.answer(from: c, to: a, offerID: forB), from: 2, now: 1))
                == [TrackerError.notInSwarm.description], "connection 2 is not c")
        #expect(t.received(Self.answer(from: b, to: a, offerID: forB), from: 2, now: 1).count == 1, "the real answer")
        #expect(Self.failures(t.received(Self.answer(from: b, to: a, offerID: forB), from: 2, now: 1)) == noSuchOffer,
                "an offer is answered once")
        #expect(t.statistics.answersRelayed == 1)
    }

    @Test func aPeerThatDisconnectsIsForgottenAtOnce() {
        var t = Self.tracker()
        let (a, b) = (Self.peer(1), Self.peer(2))
        t.connected(1, now: 0)
        t.connected(2, now: 0)
        _ = t.received(Self.announce(b), from: 2, now: 0)
        let actions = t.received(Self.announce(a, offers: ["o1"]), from: 1, now: 0)
        #expect(Self.sent(actions, to: 2).count == 1)
        #expect(t.peerCount(Self.cam) == 2)
        t.disconnected(1)
        #expect(t.peerCount(Self.cam) == 1)
        #expect(t.statistics.peers == 1 && t.statistics.connections == 1)
        // Its offer's answer has nowhere to go.
        #expect(Self.failures(t.received(Self.answer(from: b, to: a, offerID: "o1"), from: 2, now: 1)).count == 1)
        t.disconnected(2)
        #expect(t.swarmCount == 0 && t.statistics.peers == 0)
        // A new peer reusing the id is a new peer.
        t.connected(3, now: 2)
        #expect(Self.failures(t.received(Self.announce(a), from: 3, now: 2)).isEmpty)
    }

    /// Part announcements go to the peers of the swarm that asked for them in their last announce, and to no one
    /// else; a peer that leaves gets none. A malformed `x_liveswarm` is refused, not taken as no.
    @Test func partAnnouncementsGoToPeersThatAskedForThem() throws {
        var t = Self.tracker()
        for c in 1...4 { t.connected(c, now: 0) }
        _ = t.received(Self.announce(Self.peer(1), extra: #""x_liveswarm":{"parts":true}"#), from: 1, now: 0)
        _ = t.received(Self.announce(Self.peer(2)), from: 2, now: 0)
        _ = t.received(Self.announce(Self.peer(3), in: Self.other, extra: #""x_liveswarm":{"parts":true}"#), from: 3, now: 0)
        _ = t.received(Self.announce(Self.peer(4), extra: #""x_liveswarm":{"parts":true}"#), from: 4, now: 0)
        #expect(Set(t.partSubscribers(Self.cam)) == [1, 4])
        #expect(t.partSubscribers(Self.other) == [3])
        // Asking no longer, or leaving, ends them.
        _ = t.received(Self.announce(Self.peer(4), extra: #""x_liveswarm":{"parts":false}"#), from: 4, now: 1)
        #expect(t.partSubscribers(Self.cam) == [1])
        t.disconnected(1)
        #expect(t.partSubscribers(Self.cam).isEmpty)
        for bad in [#""x_liveswarm":{"parts":1}"#, #""x_liveswarm":[true]"#, #""x_liveswarm":"parts""#] {
            #expect(Self.failures(t.received(Self.announce(Self.peer(2), extra: bad), from: 2, now: 2)).count == 1, "\(bad)")
        }
        // The message itself: an announce without interval, offer or answer (WebTorrent clients pass over it).
        let text = TrackerResponse.part(infoHash: Self.cam, .init(id: "12.3", bytes: 54212, sha256: "r/RCyc+/=", durationMs: 500,
                                                                    independent: true, time: 1_733_400_000_123, initID: 0)).json
        let o = try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(o["action"] as? String == "announce" && o["interval"] == nil && o["offer"] == nil && o["answer"] == nil)
        #expect(InfoHash(binaryString: o["info_hash"] as? String ?? "") == Self.cam)
        let part = try #require((o["x_liveswarm"] as? [String: Any])?["part"] as? [String: Any])
        #expect(part["id"] as? String == "12.3" && part["bytes"] as? Int == 54212 && part["sha256"] as? String == "r/RCyc+/=")
        #expect(part["duration_ms"] as? Int == 500 && part["independent"] as? Bool == true && part["time"] as? Int == 1_733_400_000_123
                && part["init"] as? Int == 0)
    }

    @Test func stoppedLeavesTheSwarm() {
        var t = Self.tracker()
        t.connected(1, now: 0)
        _ = t.received(Self.announce(Self.peer(1)), from: 1, now: 0)
        #expect(t.peerCount(Self.cam) == 1)
        _ = t.received(Self.announce(Self.peer(1), event: "stopped"), from: 1, now: 1)
        #expect(t.peerCount(Self.cam) == nil)
    }

    @Test func unknownSwarmsAndBadMessagesLeaveOtherSwarmsAlone() {
        var t = Self.tracker()
        t.connected(1, now: 0)
        t.connected(2, now: 0)
        t.connected(3, now: 0)
        _ = t.received(Self.announce(Self.peer(10), in: Self.other), from: 3, now: 0)
        let torrent = InfoHash(Array(repeating: 7, count: 20))!
        #expect(Self.failures(t.received(Self.announce(Self.peer(1), in: torrent), from: 1, now: 0))
                == [TrackerError.unknownSwarm(torrent).description])
        for bad in ["{", "[]", #"{"action":"nuke"}"#, #"{"action":"announce","info_hash":"abc","peer_id":"x"}"#] {
            #expect(Self.failures(t.received(bad, from: 1, now: 0)).count == 1, "\(bad)")
        }
        _ = t.received(Self.announce(Self.peer(11), in: Self.other), from: 2, now: 1)
        let actions = t.received(Self.announce(Self.peer(10), in: Self.other, offers: ["x"]), from: 3, now: 1)
        #expect(Self.sent(actions, to: 2).count == 1, "the other swarm still relays")
        #expect(t.peerCount(Self.other) == 2)
    }

    @Test func anOversizedMessageClosesItsConnectionOnly() {
        var t = Self.tracker { $0.maxMessageBytes = 1000 }
        t.connected(1, now: 0)
        t.connected(2, now: 0)
        _ = t.received(Self.announce(Self.peer(2)), from: 2, now: 0)
        _ = t.received(Self.announce(Self.peer(1)), from: 1, now: 0)
        let big = Self.announce(Self.peer(1), offers: [String(repeating: "x", count: 2000)])
        let actions = t.received(big, from: 1, now: 1)
        #expect(actions.contains(.close(1, .messageTooLarge(bytes: big.utf8.count, limit: 1000))))
        #expect(t.peerCount(Self.cam) == 1, "the closed connection's peer left")
        #expect(t.received(Self.announce(Self.peer(1)), from: 1, now: 2).isEmpty, "nothing more from a closed connection")
        #expect(Self.failures(t.received(Self.announce(Self.peer(2)), from: 2, now: 2)).isEmpty)
    }

    @Test func aFloodOfAnnouncesIsRateLimitedThenClosed() {
        var t = Self.tracker()
        t.connected(1, now: 0)
        t.connected(2, now: 0)
        _ = t.received(Self.announce(Self.peer(2), in: Self.other), from: 2, now: 0)
        var answered = 0, refused = 0, closed = false
        for i in 0..<10_000 where !closed {
            let actions = t.received(Self.announce(Self.peer(1), offers: ["f\(i)"]), from: 1, now: Double(i) * 0.001)
            closed = actions.contains { if case .close = $0 { true } else { false } }
            if Self.failures(actions).isEmpty { answered += 1 } else { refused += 1 }
        }
        #expect(closed, "a connection that keeps flooding is closed")
        #expect(answered <= 52, "the burst, plus the refill over the flood's milliseconds: \(answered)")
        #expect(refused == Tracker.Configuration().maxRefusals)
        #expect(t.peerCount(Self.cam) == nil)
        let actions = t.received(Self.announce(Self.peer(2), in: Self.other), from: 2, now: 1)
        #expect(Self.failures(actions).isEmpty && t.peerCount(Self.other) == 1)
        // A peer that announces at a sane rate is never limited.
        t.connected(3, now: 10)
        for i in 0..<200 {
            #expect(Self.failures(t.received(Self.announce(Self.peer(3)), from: 3, now: 10 + Double(i) * 0.2)).isEmpty)
        }
    }

    @Test func peerLimitsPerSwarmAndPerConnection() {
        var t = Self.tracker { $0.maxPeersPerSwarm = 3; $0.maxSwarmsPerConnection = 1 }
        for i in 1...4 { t.connected(i, now: 0) }
        for i in 1...3 { #expect(Self.failures(t.received(Self.announce(Self.peer(i)), from: i, now: 0)).isEmpty) }
        #expect(Self.failures(t.received(Self.announce(Self.peer(4)), from: 4, now: 0)) == [TrackerError.swarmFull(limit: 3).description])
        #expect(Self.failures(t.received(Self.announce(Self.peer(1), in: Self.other), from: 1, now: 0))
                == [TrackerError.tooManySwarms(limit: 1).description])
        // Someone else's peer id.
        #expect(Self.failures(t.received(Self.announce(Self.peer(1)), from: 2, now: 0)) == [TrackerError.peerIDInUse.description])
        t.disconnected(3)
        #expect(Self.failures(t.received(Self.announce(Self.peer(4)), from: 4, now: 1)).isEmpty, "room again")
    }

    @Test func offersGoToMeasuredUploadersFirstButNotOnly() {
        var t = Self.tracker()
        // 40 peers; peers 1-5 report 1 MB/s of upload, the rest nothing.
        for i in 1...40 {
            t.connected(i, now: 0)
            _ = t.received(Self.announce(Self.peer(i), uploaded: 0), from: i, now: 0)
            _ = t.received(Self.announce(Self.peer(i), uploaded: i <= 5 ? 10_000_000 : 0), from: i, now: 10)
        }
        t.connected(100, now: 10)
        var toUploaders = 0, toOthers = 0
        for round in 0..<200 {
            let now = 10 + Double(round)
            let actions = t.received(Self.announce(Self.peer(100), offers: ["a\(round)", "b\(round)"]), from: 100, now: now)
            for case .send(let c, .offer) in actions { if c <= 5 { toUploaders += 1 } else { toOthers += 1 } }
            // Answer everything so no one hits the pending limit.
            for case .send(let c, .offer(_, _, let id, _)) in actions {
                _ = t.received(Self.answer(from: Self.peer(c), to: Self.peer(100), offerID: id), from: c, now: now)
            }
        }
        // Sampling 6 of 39, the sample's best uploader is one of peers 1-5 in 59 % of rounds (1 - C(34,6)/C(39,6)),
        // so they get about 35 % of the offers, against the 5/39 = 13 % (51 of 400) of a choice at random; the
        // random half reaches the others.
        #expect(toUploaders + toOthers == 400)
        #expect(toUploaders >= 102, "uploaders got \(toUploaders) of 400, twice their share at random is 102")
        #expect(toOthers >= 160, "others got \(toOthers) of 400")
    }

    @Test func aPeerWithManyUnansweredOffersGetsNoMoreUntilTheyExpire() {
        var t = Self.tracker { $0.maxPendingOffersPerPeer = 3; $0.offerTimeout = 30 }
        t.connected(1, now: 0)
        t.connected(2, now: 0)
        _ = t.received(Self.announce(Self.peer(2)), from: 2, now: 0)
        var relayed = 0
        for i in 0..<6 {
            relayed += Self.sent(t.received(Self.announce(Self.peer(1), offers: ["o\(i)"]), from: 1, now: Double(i)), to: 2).count
        }
        #expect(relayed == 3)
        // Expired: a late answer is refused, and the peer can be offered to again.
        #expect(Self.failures(t.received(Self.answer(from: Self.peer(2), to: Self.peer(1), offerID: "o0"), from: 2, now: 35)).count == 1)
        #expect(t.statistics.pendingOffers == 0)
        #expect(Self.sent(t.received(Self.announce(Self.peer(1), offers: ["late"]), from: 1, now: 40), to: 2).count == 1)
    }

    @Test func scrapeCountsPeers() {
        var t = Self.tracker()
        t.connected(1, now: 0)
        _ = t.received(Self.announce(Self.peer(1)), from: 1, now: 0)
        let actions = t.received("{\"action\":\"scrape\",\"info_hash\":\(Self.str(Self.cam))}", from: 1, now: 0)
        #expect(actions == [.send(1, .scrape([(Self.cam, complete: 0, incomplete: 1)]))])
    }

    /// Random damage to valid messages: every result is a reply or a refusal, never a trap or a hang.
    @Test func mutatedMessagesNeverBreakTheTracker() {
        var rng = SplitMix64(state: 8)
        var t = Self.tracker { $0.messagesPerSecond = 1e9; $0.messageBurst = 1e9 }
        t.connected(1, now: 0)
        t.connected(2, now: 0)
        _ = t.received(Self.announce(Self.peer(2)), from: 2, now: 0)
        let seeds = [Self.announce(Self.peer(1), offers: ["a", "b"], numwant: 2, uploaded: 5),
                     Self.answer(from: Self.peer(1), to: Self.peer(2), offerID: "a"),
                     "{\"action\":\"scrape\",\"info_hash\":[\(Self.str(Self.cam))]}"]
        for i in 0..<3000 {
            let bytes = rng.mutate(Array(seeds[i % seeds.count].utf8), count: 1 + i % 6)
            let text = String(decoding: bytes, as: UTF8.self)
            t.connected(1, now: Double(i))
            let actions = t.received(text, from: 1, now: Double(i))
            #expect(!actions.isEmpty || text.isEmpty)
        }
        #expect(t.peerCount(Self.cam) ?? 0 >= 1, "peer 2 is still there")
    }

    @Test func switchingP2POffEmptiesTheStreamsSwarmAndRefusesOffersUntilItIsOnAgain() throws {
        var t = Self.tracker()
        let (a, b, c) = (Self.peer(1), Self.peer(2), Self.peer(3))
        for id in 1...3 { t.connected(id, now: 0) }
        _ = t.received(Self.announce(a), from: 1, now: 0)
        _ = t.received(Self.announce(b, offers: ["o1"]), from: 2, now: 0)   // relayed to a, pending
        _ = t.received(Self.announce(c, in: Self.other), from: 3, now: 0)
        #expect(t.peerCount(Self.cam) == 2 && t.statistics.pendingOffers == 1)

        let told = t.setP2P(false, stream: "live/cam")
        // Both peers of live/cam are told, with the extension field a page acts on; live/other is untouched.
        #expect(Set(told.compactMap { if case .send(let to, .p2pOff(Self.cam, "live/cam")) = $0 { to } else { nil } }) == [1, 2])
        #expect(told.count == 2)
        let json = try #require(Self.sent(told, to: 1).first?.json)
        #expect(json.contains(#""x_liveswarm":{"stream":"live/cam","p2p":false}"#) && json.contains("failure reason"))
        #expect(t.peerCount(Self.cam) == nil && t.peerCount(Self.other) == 1)
        #expect(t.statistics.pendingOffers == 0 && t.statistics.peers == 1)
        // a's answer to the forgotten offer goes nowhere; announces with offers get the same answer and relay nothing.
        #expect(Self.failures(t.received(Self.answer(from: a, to: b, offerID: "o1"), from: 1, now: 1)).count == 1)
        let again = t.received(Self.announce(a, offers: ["o2"]), from: 1, now: 1)
        #expect(again == [.send(1, .p2pOff(infoHash: Self.cam, stream: "live/cam"))])
        #expect(t.peerCount(Self.cam) == nil)

        // On again: the next announces join, and offers flow.
        #expect(t.setP2P(true, stream: "live/cam").isEmpty)
        _ = t.received(Self.announce(a), from: 1, now: 2)
        let offers = t.received(Self.announce(b, offers: ["o3"]), from: 2, now: 2)
        #expect(Self.sent(offers, to: 1).contains { if case .offer(Self.cam, b, "o3", _) = $0 { true } else { false } })
        #expect(t.p2pOff.isEmpty)
    }
}
