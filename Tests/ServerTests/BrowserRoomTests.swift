import Foundation
import Server
import Testing
import TestSupport

/// A meeting room with real browsers (`Tests/Browser/meeting.py` on `web-demo/meeting`): four participants, each a
/// headless Chromium process of its own with a fake camera of its own colour and a fake microphone of its own tone,
/// then a late joiner, a mute, a stopped subscription and a leave. Misrouting shows as a wrong colour or tone.
@Suite(.serialized, .timeLimit(.minutes(6))) struct BrowserRoomTests {
    struct Run: Decodable {
        struct Person: Decodable { var name: String; var colour: [Int]; var tone: Int }
        struct Tile: Decodable {
            var viewer: String
            var tile: String
            var fps10s: Double
            var seenColor: [Int]?
            var heardHz: Int?
            var freezeCount: Int?
            var glassMs: Double?
        }
        struct LateJoin: Decodable { var joinMs: Int; var busy: Double; var tiles: Int; var timeline: String }
        struct Mute: Decodable {
            var who: String
            var packetsBefore: Int?
            var packetsAfter: Int?
            var browserSentBefore: Int?
            var browserSentAfter: Int?
            var settleSeconds: Double?
            var serverMuted: Bool?
            var placeholders: [String: Bool?]
        }
        struct Unsubscribe: Decodable {
            var sentBefore: Int?
            var sentAfter: Int?
            var enabled: Bool?
            var othersSentBefore: Int?
            var othersSentAfter: Int?
        }
        struct Leave: Decodable { var who: String; var tileGoneMs: [String: Int] }

        var error: String?
        var participants: [Person]
        var steady: [Tile]?
        var steadyBusy: Double?
        var lateJoins: [LateJoin]?
        var mute: Mute?
        var unsubscribe: Unsubscribe?
        var leave: Leave?
    }

    /// The participant whose colour is nearest to `rgb`.
    static func nearest(_ rgb: [Int]?, in people: [Run.Person]) -> String? {
        guard let rgb, rgb.count == 3 else { return nil }
        return people.min { a, b in
            zip(a.colour, rgb).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } < zip(b.colour, rgb).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        }?.name
    }

    @Test func fourParticipantsSeeAndHearTheRightPeopleThenOneJoinsLateOneMutesAndOneLeaves() async throws {
        let server = try await TestServer.start { $0.apiToken = "room-test" }
        defer { Task { await server.stop() } }
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("liveswarm-meeting-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: work) }
        // meeting.py runs the browsers at a lower CPU priority than this process, which holds the server: on two
        // cores, five Chromiums would otherwise take the CPU the server needs to forward in time.
        let tool = try Tool.python([Tool.checkout.appendingPathComponent("Tests/Browser/meeting.py").path,
                                    "--base", server.httpURL, "--room", "standup", "--api-token", "room-test", "--workdir", work])
        let run = try await tool.jsonResult(Run.self, timeout: .seconds(420))
        print(tool.errorOutput.split(separator: "\n").filter { $0.hasPrefix("meeting:") }.joined(separator: "\n"))
        #expect(run.error == nil, "\(run.error ?? "")")
        let people = run.participants

        // Everyone sees and hears the right people, never themselves.
        let steady = run.steady ?? []
        #expect(steady.count == 12, "four pages with three tiles each: \(steady.map { "\($0.viewer)>\($0.tile)" })")
        let starved = (run.steadyBusy ?? 0) >= 0.7 && steady.contains { $0.fps10s < 10 }
        for t in steady {
            let tone = people.first { $0.name == t.tile }?.tone ?? 0
            let own = people.first { $0.name == t.viewer }?.tone ?? 0
            print("\(t.viewer) sees \(t.tile): \(t.fps10s) fps, colour \(t.seenColor ?? []), tone \(t.heardHz ?? 0) Hz, freezes \(t.freezeCount ?? 0)")
            #expect(Self.nearest(t.seenColor, in: people) == t.tile, "\(t.viewer)'s tile for \(t.tile) shows \(t.seenColor ?? [])")
            #expect(abs((t.heardHz ?? 0) - tone) <= 15, "\(t.viewer) hears \(t.heardHz ?? 0) Hz from \(t.tile) (\(tone) Hz)")
            #expect(abs((t.heardHz ?? 0) - own) > 15 || t.tile == t.viewer, "\(t.viewer) hears itself")
            CPUSampler.judgeTiming(starved: starved, "CPUs \(Int((run.steadyBusy ?? 0) * 100)) % busy") {
                #expect(t.fps10s >= 10, "\(t.viewer) decodes \(t.tile) at \(t.fps10s) fps")
            }
        }

        // The late joiner sees everyone within a second of opening the page (median of its joins).
        let joins = run.lateJoins ?? []
        #expect(joins.count >= 3 && joins.allSatisfy { $0.tiles == 4 }, "\(joins.map(\.tiles))")
        let median = joins.map(\.joinMs).sorted()[joins.count / 2]
        let busy = joins.map(\.busy).sorted()[joins.count / 2]
        print("late joiner: everyone seen after \(joins.map(\.joinMs)) ms (median \(median) ms), CPUs \(joins.map { Int($0.busy * 100) }) % busy")
        for j in joins where j.joinMs >= 1000 { print("  slow join (\(j.joinMs) ms): \(j.timeline)") }
        CPUSampler.judgeTiming(starved: busy >= 0.7, "late joins with the CPUs \(Int(busy * 100)) % busy") {
            #expect(median < 1000, "median join time \(median) ms")
        }

        // A mute reaches the others, who show a placeholder, and the track's packets stop at the server.
        let mute = try #require(run.mute)
        print("mute: settled after \(mute.settleSeconds ?? -1) s; server packets \(mute.packetsBefore ?? -1) -> \(mute.packetsAfter ?? -1) in 3 s; browser sent \(mute.browserSentBefore ?? -1) -> \(mute.browserSentAfter ?? -1)")
        #expect(mute.serverMuted == true)
        #expect(mute.placeholders.count == 4 && mute.placeholders.values.allSatisfy { $0 == true }, "\(mute.placeholders)")
        #expect(mute.packetsBefore != nil && mute.packetsAfter == mute.packetsBefore)
        #expect(mute.browserSentBefore != nil && mute.browserSentAfter == mute.browserSentBefore, "the page stops sending")

        // A stopped subscription stops that forwarding only.
        let unsubscribe = try #require(run.unsubscribe)
        #expect(unsubscribe.enabled == false && unsubscribe.sentBefore != nil && unsubscribe.sentAfter == unsubscribe.sentBefore)
        #expect((unsubscribe.othersSentAfter ?? 0) > (unsubscribe.othersSentBefore ?? 0), "others still receive it")

        // A participant leaves: the others' tile for it goes within a second.
        let leave = try #require(run.leave)
        print("leave: \(leave.who)'s tile gone after \(leave.tileGoneMs) ms")
        #expect(leave.tileGoneMs.count == 4 && leave.tileGoneMs.values.allSatisfy { $0 < 1000 }, "\(leave.tileGoneMs)")
    }

    struct AiortcRun: Decodable {
        struct Received: Decodable { var name: String; var videoFrames: Int; var audioFrames: Int; var colour: [Int]?; var toneHz: Int? }
        struct Failure: Decodable { var code: String?; var message: String? }
        var joined: Bool
        var errors: [Failure]
        var received: [String: Received]?
    }

    /// BT.601 limited-range Y'CbCr to RGB, as a decoder shows it.
    static func rgb(_ ycbcr: [Int]) -> [Int] {
        let y = 1.164 * Double(ycbcr[0] - 16), cb = Double(ycbcr[1] - 128), cr = Double(ycbcr[2] - 128)
        return [y + 1.596 * cr, y - 0.392 * cb - 0.813 * cr, y + 2.017 * cb].map { max(0, min(255, Int($0.rounded()))) }
    }

    /// A participant that is not a browser: `Tests/Browser/room_client.py`, written from docs/ROOMS.md alone on aiortc,
    /// in a network namespace (aiortc offers no loopback candidates), with two Chromium participants, one on the fake
    /// camera and microphone, one on the page's own test source. Each side must see the other's colour and hear its tone.
    @Test func aiortcClientWrittenFromTheProtocolDocMeetsTwoBrowsers() async throws {
        try await NetworkNamespace.with { ns in
            let server = try await TestServer.start(reachableFrom: ns) { $0.apiToken = "room-test" }
            defer { Task { await server.stop() } }
            let host = "\(ns.hostAddress):\(server.ports.http)"
            let work = FileManager.default.temporaryDirectory.appendingPathComponent("liveswarm-meeting-aiortc-\(getpid())").path
            defer { try? FileManager.default.removeItem(atPath: work) }
            // Y'CbCr 77/197/108 is the blue of meeting.py's third participant (40, 60, 210), whom this run has not.
            // The pages load from 127.0.0.1 (getUserMedia needs a secure context, which a plain-HTTP 10.x origin is not);
            // their media goes to the address the server advertises, the namespace link's, as aiortc's does.
            let aiortc = try ns.python([Tool.checkout.appendingPathComponent("Tests/Browser/room_client.py").path,
                                        "--url", "ws://\(host)/ws", "--room", "mixed", "--name", "aiortc", "--seconds", "120",
                                        "--luma", "77", "--cb", "197", "--cr", "108", "--tone", "550",
                                        "--leave-when-alone"])
            defer { aiortc.kill(SIGKILL) }
            let browsers = try Tool.python([Tool.checkout.appendingPathComponent("Tests/Browser/meeting.py").path,
                                            "--base", server.httpURL, "--room", "mixed", "--api-token", "room-test",
                                            "--workdir", work, "--participants", "2", "--extra", "aiortc", "--steady-only",
                                            "--test-source", "1"])
            let run = try await browsers.jsonResult(Run.self, timeout: .seconds(150))
            print(browsers.errorOutput.split(separator: "\n").filter { $0.hasPrefix("meeting:") }.joined(separator: "\n"))
            // The browsers have left: aiortc, alone, leaves too and reports.
            let client = try await aiortc.jsonResult(AiortcRun.self, timeout: .seconds(30))
            print(aiortc.errorOutput.split(separator: "\n").filter { $0.hasPrefix("room_client:") }.suffix(12).joined(separator: "\n"))
            #expect(run.error == nil, "\(run.error ?? "")")
            #expect(client.joined && client.errors.isEmpty, "\(client.errors.map { "\($0.code ?? ""): \($0.message ?? "")" })")

            let people = Array(run.participants.prefix(2)) + [Run.Person(name: "aiortc", colour: Self.rgb([77, 197, 108]), tone: 550)]
            // The browsers see and hear aiortc (and each other).
            let steady = run.steady ?? []
            #expect(steady.count == 4, "two pages with two tiles each: \(steady.map { "\($0.viewer)>\($0.tile)" })")
            let starved = (run.steadyBusy ?? 0) >= 0.7 && steady.contains { $0.fps10s < 10 }
            for t in steady {
                let tone = people.first { $0.name == t.tile }?.tone ?? 0
                print("\(t.viewer) sees \(t.tile): \(t.fps10s) fps, colour \(t.seenColor ?? []), tone \(t.heardHz ?? 0) Hz, glass to glass \(t.glassMs.map { "\(Int($0)) ms" } ?? "-")")
                #expect(Self.nearest(t.seenColor, in: people) == t.tile, "\(t.viewer)'s tile for \(t.tile) shows \(t.seenColor ?? [])")
                #expect(abs((t.heardHz ?? 0) - tone) <= 15, "\(t.viewer) hears \(t.heardHz ?? 0) Hz from \(t.tile) (\(tone) Hz)")
                CPUSampler.judgeTiming(starved: starved, "CPUs \(Int((run.steadyBusy ?? 0) * 100)) % busy") {
                    #expect(t.fps10s >= 10, "\(t.viewer) decodes \(t.tile) at \(t.fps10s) fps")
                }
            }
            // p1 publishes the page's test source (canvas and oscillator) with the glass clock, which p0 reads.
            let clocked = try #require(steady.first { $0.viewer == "p0" && $0.tile == "p1" })
            #expect(clocked.glassMs.map { $0 > 0 && $0 < 1000 } == true, "p0 reads p1's glass clock: \(clocked.glassMs ?? -1) ms")
            // aiortc receives both browsers: their pictures (Y'CbCr, compared in RGB) and tones.
            let received = Array((client.received ?? [:]).values)
            #expect(Set(received.map(\.name)) == ["p0", "p1"], "aiortc received from \(received.map(\.name))")
            for r in received {
                let tone = people.first { $0.name == r.name }?.tone ?? 0
                print("aiortc receives \(r.name): \(r.videoFrames) video frames, \(r.audioFrames) audio frames, colour \(r.colour ?? []), tone \(r.toneHz ?? 0) Hz")
                #expect(r.videoFrames > 100 && r.audioFrames > 500, "\(r.name): \(r.videoFrames) video, \(r.audioFrames) audio frames")
                #expect(Self.nearest(r.colour.map(Self.rgb), in: people) == r.name, "aiortc's picture of \(r.name) is \(r.colour ?? [])")
                #expect(abs((r.toneHz ?? 0) - tone) <= 15, "aiortc hears \(r.toneHz ?? 0) Hz from \(r.name) (\(tone) Hz)")
            }
        }
    }

    struct ResumeRun: Decodable {
        struct Event: Decodable { var type: String }
        struct Reset: Decodable {
            var resumedAfterS: Double
            var resumes: Int
            var iceRestarts: Int
            var longestStallS: Double
            var observerEvents: [Event]
            var observerOffers: Int
            var moverState: String
            var moverId: String?
        }
        struct Move: Decodable {
            var mediaBackS: Double?
            var busy: Double
            var resumes: Int
            var iceRestarts: Int
            var pairSwitches: Int
            var pageIceRestarts: Int
            var observerEvents: [Event]
            var observerOffers: Int
            var sameReceivers: Bool
            var moverState: String
            var moverId: String?
        }
        struct Restart: Decodable {
            var iceRestarts: Int
            var pageIceRestarts: Int
            var longestStallS: Double
            var observerEvents: [Event]
            var observerOffers: Int
            var sameReceivers: Bool
        }
        struct Reload: Decodable { var moverId: String?; var resumes: Int; var observerEvents: [String] }
        struct Cut: Decodable {
            var leftAfterS: Double
            var reason: String?
            var backAfterS: Double
            var newId: String
            var rejoins: Int
            var observerTiles: [String]
            var serverParticipants: [String]
        }
        struct Removed: Decodable { var state: String; var newSockets: Int; var serverParticipants: [String] }
        var error: String?
        var moverId: String?
        var reset: Reset?
        var move: Move?
        var restart: Restart?
        var reload: Reload?
        var cut: Cut?
        var removed: Removed?
    }

    /// A participant whose network misbehaves (Chromium in a network namespace, `Tests/Browser/resume.py`), watched
    /// by one on the host (docs/ROOMS.md, Resuming a seat): its WebSocket reset, its address changed, its page
    /// reloaded, its link cut for longer than the grace, and finally removed by the operator. The server's counters
    /// show which path each case took.
    @Test func aParticipantResumesThroughAResetAMoveAndAReloadAndComesBackAsNewAfterALongCut() async throws {
        try await NetworkNamespace.with { ns in
            let server = try await TestServer.start(reachableFrom: ns) { $0.apiToken = "room-test" }
            defer { Task { await server.stop() } }
            let work = FileManager.default.temporaryDirectory.appendingPathComponent("liveswarm-resume-\(getpid())").path
            defer { try? FileManager.default.removeItem(atPath: work) }
            let newAddress = ns.address.split(separator: ".").dropLast().joined(separator: ".") + ".3"
            let tool = try Tool.python([Tool.checkout.appendingPathComponent("Tests/Browser/resume.py").path,
                                        "--base", server.httpURL, "--ns-base", "http://\(ns.hostAddress):\(server.ports.http)",
                                        "--room", "moving", "--api-token", "room-test", "--workdir", work, "--ns", ns.name,
                                        "--ns-link", ns.peerLink, "--ns-address", ns.address, "--ns-new-address", newAddress,
                                        "--http-port", "\(server.ports.http)"])
            let run = try await tool.jsonResult(ResumeRun.self, timeout: .seconds(270))
            print(tool.errorOutput.split(separator: "\n").filter { $0.hasPrefix("resume:") }.joined(separator: "\n"))
            #expect(run.error == nil, "\(run.error ?? "")")
            let mover = try #require(run.moverId)

            // a. The WebSocket reset: resumed on a new socket, the media never stopped, no ICE restart, nobody told.
            let reset = try #require(run.reset)
            print("reset: resumed after \(reset.resumedAfterS) s; the mover's video never stalled more than \(reset.longestStallS) s")
            #expect(reset.resumes == 1 && reset.iceRestarts == 0, "resumes \(reset.resumes), ICE restarts \(reset.iceRestarts)")
            #expect(reset.moverState == "joined" && reset.moverId == mover)
            #expect(reset.longestStallS < 1.5, "the mover's video stopped at the server for \(reset.longestStallS) s")
            #expect(reset.observerEvents.isEmpty && reset.observerOffers == 0,
                    "the observer saw \(reset.observerEvents.map(\.type)) and made \(reset.observerOffers) offers")

            // b. The address changed: the media comes back on a new pair (Chromium gathers on the new address and
            // nominates a pair from it with the same credentials, and the ICE-lite agent follows; or the page restarts
            // ICE when its ICE broke), and the observer keeps its receivers.
            let move = try #require(run.move)
            print("move: media back \(move.mediaBackS.map { "\($0) s" } ?? "never") after the new address (CPUs \(Int(move.busy * 100)) % busy); " +
                  "server resumes \(move.resumes), pair switches \(move.pairSwitches), ICE restarts \(move.iceRestarts) (the page's \(move.pageIceRestarts))")
            #expect(move.resumes == 1, "the WebSocket from the old address died and was resumed")
            #expect(move.pairSwitches >= 1 || move.iceRestarts >= 1, "the media moved to the new address somehow")
            #expect(move.moverState == "joined" && move.moverId == mover)
            #expect(move.observerEvents.isEmpty && move.observerOffers == 0 && move.sameReceivers,
                    "the observer saw \(move.observerEvents.map(\.type)), made \(move.observerOffers) offers, same receivers \(move.sameReceivers)")
            CPUSampler.judgeTiming(starved: move.busy >= 0.7, "the move with the CPUs \(Int(move.busy * 100)) % busy") {
                #expect((move.mediaBackS ?? 99) < 2, "media back after \(move.mediaBackS ?? -1) s")
            }

            // b2. An ICE restart (as the page makes when its ICE breaks) moves both transports to new credentials with no
            // new DTLS handshake: the media does not stop, and the observer notices nothing.
            let restart = try #require(run.restart)
            print("restart: ICE restarts \(restart.iceRestarts) (the page's \(restart.pageIceRestarts)); the mover's video never stalled more than \(restart.longestStallS) s")
            #expect(restart.iceRestarts == 2 && restart.pageIceRestarts == 2)
            #expect(restart.longestStallS < 1.5, "the mover's video stopped at the server for \(restart.longestStallS) s")
            #expect(restart.observerEvents.isEmpty && restart.observerOffers == 0 && restart.sameReceivers,
                    "the observer saw \(restart.observerEvents.map(\.type)), made \(restart.observerOffers) offers, same receivers \(restart.sameReceivers)")

            // c. A reload resumes the same seat.
            let reload = try #require(run.reload)
            #expect(reload.moverId == mover && reload.resumes == 1, "\(reload.moverId ?? "none") vs \(mover), resumes \(reload.resumes)")
            #expect(!reload.observerEvents.contains("participantLeft") && !reload.observerEvents.contains("participantJoined"),
                    "\(reload.observerEvents)")

            // d. A cut longer than the grace: the others are told within the grace and 2 s; the mover comes back as
            // someone new, with no ghost.
            let cut = try #require(run.cut)
            print("cut: the observer was told after \(cut.leftAfterS) s (\(cut.reason ?? "")); back as \(cut.newId) \(cut.backAfterS) s after the link")
            #expect(cut.leftAfterS <= 22 && cut.leftAfterS >= 15 && cut.reason == "disconnected", "told after \(cut.leftAfterS) s: \(cut.reason ?? "")")
            #expect(cut.newId != mover && cut.rejoins == 1)
            #expect(cut.observerTiles == [cut.newId] && cut.serverParticipants == ["mover", "observer"],
                    "tiles \(cut.observerTiles), server \(cut.serverParticipants)")

            // e. Removed by the operator: it stays out.
            let removed = try #require(run.removed)
            #expect(removed.state == "removed" && removed.newSockets == 0 && removed.serverParticipants == ["observer"],
                    "\(removed.state), \(removed.newSockets) new sockets, server \(removed.serverParticipants)")
        }
    }

    struct SpeakerRun: Decodable {
        struct Voice: Decodable { var at: Double; var speaking: Bool }
        struct Event: Decodable { var at: Double; var participant: String? }
        struct Highlight: Decodable { var speaker: String?; var tiles: [String: Bool] }
        struct Delay: Decodable { var medianMs: Double?; var p95Ms: Double?; var frames: Int? }
        struct Screen: Decodable {
            struct Tile: Decodable { var name: String; var source: String; var of: String; var videoTrack: String?; var framesDecoded: Int? }
            struct Track: Decodable { var id: String; var kind: String; var source: String }
            var tile: Tile
            var serverTracks: [Track]
            var sharing: Bool?
            var screenTrack: String?
            var cameraTile: String?
            var goneAfterS: Double?
            var serverTracksAfter: [String]?
        }
        var error: String?
        var busy: Double?
        var from: Double?
        var to: Double?
        var voice: [String: [Voice]]?
        var speakerEvents: [String: [Event]]?
        var highlight: [String: Highlight]?
        var delay: Delay?
        var screen: Screen?
        var participants: [String: String]?
    }

    /// When `name` was speaking, from its page's own microphone: [start, end) intervals in epoch ms.
    static func intervals(_ voice: [SpeakerRun.Voice], until end: Double) -> [(Double, Double)] {
        var out: [(Double, Double)] = []
        var start: Double?
        for v in voice.sorted(by: { $0.at < $1.at }) {
            if v.speaking, start == nil { start = v.at }
            if !v.speaking, let s = start { out.append((s, v.at)); start = nil }
        }
        if let s = start { out.append((s, end)) }
        return out
    }

    /// Two participants whose microphones sound on different schedules (`Tests/Browser/speakers.py`): the server
    /// finds the active speaker from the audio levels in their packets (RFC 6464), and each page hears of it within
    /// a second of the speaker starting, at most three times a second, and outlines that tile. One page also reads
    /// the other's glass clock: the room's glass-to-glass delay. Last, one shares its screen with a click.
    @Test func theActiveSpeakerAndAScreenShareReachTheOthersAndTheDelayIsMeasured() async throws {
        let server = try await TestServer.start { $0.apiToken = "room-test" }
        defer { Task { await server.stop() } }
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("liveswarm-speakers-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: work) }
        let tool = try Tool.python([Tool.checkout.appendingPathComponent("Tests/Browser/speakers.py").path,
                                    "--base", server.httpURL, "--room", "talk", "--api-token", "room-test", "--workdir", work])
        let run = try await tool.jsonResult(SpeakerRun.self, timeout: .seconds(150))
        print(tool.errorOutput.split(separator: "\n").filter { $0.hasPrefix("speakers:") }.joined(separator: "\n"))
        #expect(run.error == nil, "\(run.error ?? "")")
        let from = try #require(run.from), to = try #require(run.to)
        let voice = run.voice ?? [:], events = run.speakerEvents ?? [:]
        let spoke = voice.mapValues { Self.intervals($0, until: to) }
        var judged = 0
        var latencies: [Double] = []
        for (speaker, onsets) in spoke {
            let other = speaker == "p0" ? "p1" : "p0"
            for (start, _) in onsets where start >= from - 2000 && start <= to - 1500 {
                // A clean onset: the other was silent from half a second before to a second after.
                let overlap = (spoke[other] ?? []).contains { $0.0 < start + 1000 && $0.1 > start - 500 }
                guard !overlap else { continue }
                judged += 1
                let told = (events[other] ?? []).first { $0.participant == speaker && $0.at >= start - 300 }
                let latency = told.map { $0.at - start }
                latencies.append(latency ?? .infinity)
                #expect((latency ?? .infinity) <= 1000, "\(other) heard that \(speaker) speaks \(latency.map { "\(Int($0)) ms" } ?? "never") after it started")
            }
        }
        print("active speaker: \(judged) clean onsets, told after \(latencies.map { $0.isFinite ? "\(Int($0)) ms" : "never" }) (CPUs \(Int((run.busy ?? 0) * 100)) % busy)")
        #expect(judged >= 2, "too few clean onsets to judge: \(spoke)")
        // At most three changes a second, on every page.
        for (viewer, list) in events {
            let inWindow = list.filter { $0.at >= from && $0.at <= to }
            #expect(Double(inWindow.count) <= (to - from) / 1000 * 3 + 1, "\(viewer): \(inWindow.count) events in \((to - from) / 1000) s")
            for (a, b) in zip(list, list.dropFirst()) { #expect(b.at - a.at >= 300, "\(viewer): events \(Int(b.at - a.at)) ms apart") }
        }
        // The page outlines the speaker's tile, and only it.
        for (viewer, h) in run.highlight ?? [:] {
            for (tile, speaking) in h.tiles { #expect(speaking == (h.speaker == tile), "\(viewer): tile \(tile) outlined \(speaking), speaker \(h.speaker ?? "none")") }
        }
        // Screen share, started with a click: p1 receives a second video of p0's, labelled as the screen.
        let screen = try #require(run.screen)
        print("screen share: p1 shows \(screen.tile.name) (\(screen.tile.framesDecoded ?? 0) frames); server tracks \(screen.serverTracks.map { "\($0.kind) \($0.source)" }); tile gone \(screen.goneAfterS ?? -1) s after the stop")
        #expect(screen.sharing == true && screen.screenTrack != nil)
        #expect(screen.tile.source == "screen" && screen.tile.of == run.participants?["p0"] && screen.tile.videoTrack == screen.screenTrack)
        #expect(screen.cameraTile != nil && screen.cameraTile != screen.tile.videoTrack, "the camera tile keeps the camera")
        #expect(screen.serverTracks.map(\.source).sorted() == ["camera", "microphone", "screen"], "\(screen.serverTracks)")
        #expect((screen.goneAfterS ?? 99) < 3 && screen.serverTracksAfter?.sorted() == ["camera", "microphone"])

        // Glass to glass: p0 reads the clock p1's test source draws.
        let delay = try #require(run.delay)
        print("glass to glass in the room: median \(delay.medianMs ?? -1) ms, p95 \(delay.p95Ms ?? -1) ms over \(delay.frames ?? 0) frames (goal: under 150 ms on loopback)")
        #expect((delay.frames ?? 0) >= 30)
        CPUSampler.judgeTiming(starved: (run.busy ?? 0) >= 0.7, "CPUs \(Int((run.busy ?? 0) * 100)) % busy") {
            #expect((delay.medianMs ?? 999) < 150, "median glass to glass \(delay.medianMs ?? -1) ms")
        }
    }

    struct FirefoxRun: Decodable {
        struct Tile: Decodable { var name: String; var fps: Double?; var framesDecoded: Int?; var seenColor: [Int]?; var heardHz: Int? }
        struct Failure: Decodable { var code: String?; var message: String? }
        var joined: Bool
        var error: String?
        var tiles: [Tile]
        var errors: [Failure]
    }

    /// Firefox ESR as a participant (`Tests/Browser/firefox_participant.py`, headless over Marionette, in a network
    /// namespace, its camera and microphone the page's canvas and oscillator) with three Chromium participants on the
    /// host, each with its own fake camera colour and tone: Firefox sees and hears the three, and they see its colour
    /// and hear its tone.
    @Test func aFirefoxParticipantMeetsThreeChromiumOnes() async throws {
        try await NetworkNamespace.with { ns in
            let server = try await TestServer.start(reachableFrom: ns) { $0.apiToken = "room-test" }
            defer { Task { await server.stop() } }
            let work = FileManager.default.temporaryDirectory.appendingPathComponent("liveswarm-firefox-\(getpid())").path
            defer { try? FileManager.default.removeItem(atPath: work) }
            // Firefox loads the page from the namespace link's address: the canvas source needs no secure context.
            let url = "http://\(ns.hostAddress):\(server.ports.http)/meeting/?room=fox&name=firefox&source=test&color=d2be28&tone=660&audioProcessing=0"
            let firefox = try ns.python([Tool.checkout.appendingPathComponent("Tests/Browser/firefox_participant.py").path,
                                         "--url", url, "--expect", "3", "--seconds", "150"])
            defer { firefox.kill(SIGKILL) }
            let browsers = try Tool.python([Tool.checkout.appendingPathComponent("Tests/Browser/meeting.py").path,
                                            "--base", server.httpURL, "--room", "fox", "--api-token", "room-test",
                                            "--workdir", work, "--participants", "3", "--extra", "firefox", "--steady-only"])
            let run = try await browsers.jsonResult(Run.self, timeout: .seconds(150))
            print(browsers.errorOutput.split(separator: "\n").filter { $0.hasPrefix("meeting:") }.joined(separator: "\n"))
            let fox = try await firefox.jsonResult(FirefoxRun.self, timeout: .seconds(60))
            print(firefox.errorOutput.split(separator: "\n").filter { $0.hasPrefix("firefox:") }.joined(separator: "\n"))
            #expect(run.error == nil, "\(run.error ?? "")")
            #expect(fox.joined && fox.error == nil, "\(fox.error ?? "")")
            #expect(fox.errors.isEmpty, "\(fox.errors.map { "\($0.code ?? ""): \($0.message ?? "")" })")

            let people = Array(run.participants.prefix(3)) + [Run.Person(name: "firefox", colour: [210, 190, 40], tone: 660)]
            // The Chromium pages see and hear Firefox (and each other).
            let steady = run.steady ?? []
            #expect(steady.count == 9, "three pages with three tiles each: \(steady.map { "\($0.viewer)>\($0.tile)" })")
            let starved = (run.steadyBusy ?? 0) >= 0.7
            for t in steady {
                let tone = people.first { $0.name == t.tile }?.tone ?? 0
                print("\(t.viewer) sees \(t.tile): \(t.fps10s) fps, colour \(t.seenColor ?? []), tone \(t.heardHz ?? 0) Hz")
                #expect(Self.nearest(t.seenColor, in: people) == t.tile, "\(t.viewer)'s tile for \(t.tile) shows \(t.seenColor ?? [])")
                #expect(abs((t.heardHz ?? 0) - tone) <= 15, "\(t.viewer) hears \(t.heardHz ?? 0) Hz from \(t.tile) (\(tone) Hz)")
                // Firefox encodes the page's 15 fps canvas at 9-11 fps here (its own framesEncoded rate says so): that
                // tile must move; the Chromium cameras must reach 10 fps.
                let floor = t.tile == "firefox" ? 5.0 : 10.0
                CPUSampler.judgeTiming(starved: starved && t.fps10s < floor, "CPUs \(Int((run.steadyBusy ?? 0) * 100)) % busy") {
                    #expect(t.fps10s >= floor, "\(t.viewer) decodes \(t.tile) at \(t.fps10s) fps")
                }
            }
            // Firefox sees and hears the three.
            #expect(Set(fox.tiles.map(\.name)) == ["p0", "p1", "p2"], "\(fox.tiles.map(\.name))")
            for t in fox.tiles {
                let tone = people.first { $0.name == t.name }?.tone ?? 0
                print("firefox sees \(t.name): \(t.fps ?? 0) fps, colour \(t.seenColor ?? []), tone \(t.heardHz ?? 0) Hz")
                #expect(Self.nearest(t.seenColor, in: people) == t.name, "Firefox's tile for \(t.name) shows \(t.seenColor ?? [])")
                #expect(abs((t.heardHz ?? 0) - tone) <= 15, "Firefox hears \(t.heardHz ?? 0) Hz from \(t.name) (\(tone) Hz)")
                CPUSampler.judgeTiming(starved: starved && (t.fps ?? 0) < 10, "CPUs \(Int((run.steadyBusy ?? 0) * 100)) % busy") {
                    #expect((t.fps ?? 0) >= 10, "Firefox decodes \(t.name) at \(t.fps ?? 0) fps")
                }
            }
        }
    }
}
