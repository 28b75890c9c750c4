import StreamHub

/// Room participants as hub streams (RTMP, HTTP-FLV, HLS, LL-HLS and P2P viewers: a meeting broadcast).
///
/// Only rooms an operator asked for (``setBroadcast(room:enabled:)``, from the config or the operator API): a
/// private meeting must not appear on open URLs, and each bridged participant costs an AAC encoder and an HLS
/// window. Each participant that publishes in such a room is the hub stream `room-ROOM/PARTICIPANT`, fed by a
/// ``HubIngest`` on its first video track (its camera) and first audio track, as a WHIP stream is.
extension RoomForwarder {
    /// The hub name of a participant's stream, or nil when the room or participant id cannot be one (a stream
    /// name is letters, digits, '-', '_' and '.').
    public static func hubKey(room: String, participant: String) -> StreamKey? {
        StreamKey(app: "room-\(room)", stream: participant)
    }

    /// The room a hub stream name is for, when it is a participant's (`room-ROOM/PARTICIPANT`).
    public static func room(ofHubKey key: StreamKey) -> String? {
        key.app.hasPrefix("room-") && key.app.count > 5 ? String(key.app.dropFirst(5)) : nil
    }

    /// Why this server cannot bridge its rooms' participants, or nil when it can.
    public var broadcastUnavailable: String? {
        if registry.hub == nil { return "this server has no stream hub" }
        if videoCodec.uppercased() != "H264" {
            return "rooms send \(videoCodec) (rooms.video_codec): RTMP, HTTP-FLV and HLS viewers need H.264, and LiveSwarm does not transcode video; set rooms.video_codec: h264"
        }
        return nil
    }

    /// Makes every publishing participant of `room`, now and later, a hub stream (or stops that). The room need
    /// not exist yet. Returns the hub streams the room has now.
    @discardableResult
    public func setBroadcast(room: String, enabled: Bool) throws(RoomMediaError) -> [StreamKey] {
        if enabled {
            if let why = broadcastUnavailable { throw .unsupported(why) }
            guard Self.hubKey(room: room, participant: "p") != nil else {
                throw .unsupported("room \(room) cannot be a stream name: use letters, digits, '-', '_' and '.'")
            }
        }
        let members = lock.withLock { () -> [String] in
            if enabled { broadcastRooms.insert(room) } else { broadcastRooms.remove(room) }
            return Array((rooms[room] ?? [:]).keys)
        }
        for pid in members { reconcileHub(room: room, participant: pid) }
        registry.logger.info("room broadcast", metadata: ["room": "\(room)", "enabled": "\(enabled)", "participants": "\(members.count)"])
        return hubStreams(room: room)
    }

    public func isBroadcast(room: String) -> Bool { lock.withLock { broadcastRooms.contains(room) } }

    /// The hub streams of `room`'s participants, by name.
    public func hubStreams(room: String) -> [StreamKey] {
        lock.withLock { (ingests[room] ?? [:]).values.map(\.key) }.sorted()
    }

    /// The ingest of each participant of `room` (its figures, for the rooms' API).
    public func hubFigures(room: String) -> [String: HubIngest.Stats] {
        let all = lock.withLock { ingests[room] ?? [:] }
        return all.mapValues(\.snapshot)
    }

    /// Brings a participant's ingest in line with the room and its tracks: one while the room broadcasts and the
    /// participant publishes (a new one when its camera or microphone track changed: a republish, a track added),
    /// none otherwise. Called after every change to either.
    func reconcileHub(room: String, participant pid: String) {
        hubLock.withLock {
            let (wanted, current) = lock.withLock { () -> ((video: Producer?, audio: Producer?)?, HubIngest?) in
                let current = ingests[room]?[pid]
                guard broadcastRooms.contains(room), let m = rooms[room]?[pid], m.publisher != nil, !m.tracks.isEmpty else { return (nil, current) }
                let producers = m.tracks.map(\.producer)
                return ((producers.first { $0.kind == .video }, producers.first { $0.kind == .audio }), current)
            }
            if let current, let wanted, current.video === wanted.video, current.audio === wanted.audio { return }
            if let current {
                for p in [current.video, current.audio].compactMap({ $0 }) { p.remove(sink: current) }
                current.stop()
                lock.withLock { if ingests[room]?[pid] === current { ingests[room]?[pid] = nil; if ingests[room]?.isEmpty == true { ingests[room] = nil } } }
            }
            guard let wanted, let hub = registry.hub, let key = Self.hubKey(room: room, participant: pid) else { return }
            if let video = wanted.video, video.codec.name.uppercased() != "H264" {
                registry.logger.warning("room participant not bridged: its video is not H.264",
                                        metadata: ["room": "\(room)", "participant": "\(pid)", "codec": "\(video.codec.rtpmap)"])
                return
            }
            let publisher: Publisher
            do { publisher = try hub.publish(key, protocolName: "room", peer: "webrtc") } catch {
                registry.logger.warning("room participant not bridged: the stream name is taken", metadata: ["stream": "\(key)"])
                return
            }
            let ingest = HubIngest(key: key, publisher: publisher, video: wanted.video, audio: wanted.audio,
                                   aacBitrate: registry.options.aacBitrate, eventLoop: registry.eventLoops.next(), logger: registry.logger)
            lock.withLock { ingests[room, default: [:]][pid] = ingest }
            for p in [wanted.video, wanted.audio].compactMap({ $0 }) { p.add(sink: ingest) }
            registry.logger.info("room participant bridged to the hub", metadata: ["stream": "\(key)"])
        }
    }
}
