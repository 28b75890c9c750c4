import Audio
import Codecs
import Logging
import NIOConcurrencyHelpers
import NIOCore
import RTP
import StreamHub

/// Each track's RTP time as milliseconds of stream time (since the ingest began), on one clock for audio and video.
///
/// Until a track's first sender report its RTP time is anchored at the arrival of its first packet. A sender
/// report (RFC 3550 6.4.1) ties RTP time to the publisher's NTP wall clock, the same for every track of a sender:
/// the first report of any track fixes the offset from that clock to ours, and from then on each track's reports
/// anchor it, so audio and video line up as the publisher captured them (lip sync), whatever their first packets'
/// arrival said. Pure: RTP times, reports and instants in.
struct IngestClock: Sendable {
    struct Track: Sendable {
        var clockRate: Double
        var last: Int64?
        var anchor: (rtp: Int64, ms: Double)?
        var reported = false
    }

    var tracks: [Track]
    /// Our milliseconds minus the publisher's NTP milliseconds, from the first sender report.
    var ntpOffset: Double?

    init(clockRates: [Int]) {
        tracks = clockRates.map { Track(clockRate: Double($0)) }
    }

    /// A 32-bit RTP time extended near the track's last one.
    func extend(_ track: Int, _ rtp: UInt32) -> Int64 {
        guard let last = tracks[track].last else { return Int64(rtp) }
        return last + Int64(Int32(bitPattern: rtp &- UInt32(truncatingIfNeeded: last)))
    }

    /// Stream time (ms) of a packet of `track` with RTP time `rtp` that arrived at `arrival` ms.
    mutating func time(_ track: Int, rtp: UInt32, arrival: Double) -> Double {
        let t = extend(track, rtp)
        tracks[track].last = max(tracks[track].last ?? t, t)
        if tracks[track].anchor == nil { tracks[track].anchor = (t, arrival) }
        let a = tracks[track].anchor!
        return a.ms + Double(t - a.rtp) * 1000 / tracks[track].clockRate
    }

    /// A sender report for `track`, received at `arrival` ms.
    mutating func report(_ track: Int, ntp: UInt64, rtp: UInt32, arrival: Double) {
        let ntpMs = Double(ntp >> 32) * 1000 + Double(ntp & 0xFFFF_FFFF) * 1000 / 4_294_967_296
        if ntpOffset == nil { ntpOffset = arrival - ntpMs }
        let t = extend(track, rtp)
        if tracks[track].last == nil { tracks[track].last = t }
        tracks[track].anchor = (t, ntpMs + ntpOffset!)
        tracks[track].reported = true
    }
}

/// Something a producer hands its packets to besides its consumers: the hub ingest of a WHIP stream.
protocol ProducerSink: AnyObject, Sendable {
    /// An RTP packet of the producer's media SSRC (retransmissions unwrapped), in arrival order.
    func producer(_ producer: Producer, received packet: [UInt8])
    func producer(_ producer: Producer, senderReport: SenderReport)
}

/// A WebRTC publisher's H.264 and Opus made into a hub stream, so that every hub viewer (RTMP, HTTP-FLV, HLS,
/// LL-HLS, P2P) can watch a browser.
///
/// - Video: packets are put in order and grouped into whole frames (``FrameAssembler``: NACKed losses are waited
///   for, a frame still incomplete after 350 ms is given up and the ingest waits for a keyframe, asking for one),
///   depacketized (RFC 6184), SPS and PPS taken into an avcC (a new one, after a resolution change, is a new
///   sequence header before its keyframe) and the rest written as an FLV AVC NALU tag (4-byte lengths).
/// - Audio: Opus to AAC (``OpusToAAC``), with silence put in while no packets come, so the AAC timeline never has
///   a hole.
/// - Keyframes: browsers make them only on request. The ingest asks (PLI) 2 s after the last one, so that the
///   segmenter, which starts a segment at the first keyframe 2 s or more after the last start, cuts about every
///   2 s; and at once when a new hub viewer subscribes.
/// - Time: ``IngestClock`` (arrival, then sender reports).
///
/// Media is handed to the hub in the order it completes; nothing goes before the first keyframe with its SPS and
/// PPS (audio included, so the stream's first frames tell its viewers it has video).
public final class HubIngest: ProducerSink, @unchecked Sendable {
    public struct Stats: Sendable, Codable, Equatable {
        public var frames = 0
        public var keyframes = 0
        /// Frames given up because a packet never came, and frames left out while waiting for a keyframe after
        /// that (or at the start).
        public var framesGivenUp = 0
        public var framesWithoutKeyframe = 0
        /// Frames the publisher stopped sending part way (``FrameAssembler/Output/cutShort(dropped:)``: libwebrtc
        /// drops a delta frame's queued packets when a keyframe comes, so this is normal under load).
        public var framesCutShort = 0
        /// Frames whose payload the depacketizer refused, and what was wrong with the last one (the error and, for
        /// each of its packets, the sequence number, marker and first payload bytes).
        public var brokenFrames = 0
        public var lastBrokenFrame: String?
        /// Sequence headers sent (1, plus one per SPS/PPS change: a new resolution).
        public var configurations = 0
        public var keyframeRequests = 0
        public var width: Int?
        public var height: Int?
        public var audio: OpusToAAC.Stats?
    }

    public let key: StreamKey
    let publisher: Publisher
    let video: Producer?
    let audio: Producer?
    let logger: Logger
    let lock = NIOLock()
    let epoch = ContinuousClock.now
    var clock: IngestClock
    var assembler = FrameAssembler()
    var sps: [UInt8]?
    var pps: [UInt8]?
    var configSent = false
    var waitingForKeyframe = true
    var lastVideo: Int64 = -1
    var lastKeyframe: Double?
    var lastRequest: Double?
    var lastBrokenLog: Double?
    var newestViewer: UInt64 = 0
    var transcoder: OpusToAAC?
    var audioConfigSent = false
    var lastAudioArrival: Double?
    var timer: RepeatedTask?
    var ended = false
    var stats = Stats()

    /// How long after a keyframe the next one is asked for: the segmenter's shortest segment.
    public static let keyframeInterval = 2.0
    /// How long the audio waits for late packets before its time is filled with silence.
    static let audioHold = 300.0
    static let tickInterval = TimeAmount.milliseconds(50)

    init(key: StreamKey, publisher: Publisher, video: Producer?, audio: Producer?, aacBitrate: Int, eventLoop: any EventLoop, logger: Logger) {
        (self.key, self.publisher, self.video, self.audio) = (key, publisher, video, audio)
        self.logger = logger
        clock = IngestClock(clockRates: [video?.codec.clockRate ?? 90000, audio?.codec.clockRate ?? 48000])
        if audio != nil {
            var options = OpusToAAC.Options()
            options.bitrate = aacBitrate
            do { transcoder = try OpusToAAC(options: options) } catch {
                logger.error("WHIP to hub: no AAC encoder, the stream goes on without audio", metadata: ["stream": "\(key)", "error": "\(error)"])
            }
        }
        timer = eventLoop.scheduleRepeatedTask(initialDelay: Self.tickInterval, delay: Self.tickInterval) { [weak self] _ in self?.tick() }
    }

    var now: Double { (ContinuousClock.now - epoch) / .milliseconds(1) }

    public var snapshot: Stats {
        lock.withLock {
            var s = stats
            s.audio = transcoder?.stats
            return s
        }
    }

    /// The publisher left: the hub stream ends (its viewers wait out the republish grace).
    func stop() {
        let first = lock.withLock { () -> Bool in
            defer { ended = true }
            return !ended
        }
        guard first else { return }
        timer?.cancel()
        // The producers hold this ingest as a sink and it holds them: let go of them, or the publisher's packet
        // history (a thousand packets a stream) stays in memory for good.
        video?.remove(sink: self)
        audio?.remove(sink: self)
        publisher.unpublish()
        logger.info("WHIP to hub ended", metadata: ["stream": "\(key)", "stats": "\(snapshot)"])
    }

    func producer(_ producer: Producer, received packet: [UInt8]) {
        guard let headerEnd = RTPPacket.headerLength(packet), packet.count > headerEnd else { return }
        let arrival = now
        let (seq, ts, _) = RTPPacket.fixedFields(packet)
        lock.withLock {
            guard !ended else { return }
            if producer === video {
                let marker = packet[1] & 0x80 != 0
                // The assembler counts in seconds, the ingest in milliseconds.
                for out in assembler.push(sequence: seq, timestamp: ts, marker: marker, bytes: packet, at: arrival / 1000) { handle(out, arrival: arrival) }
            } else if producer === audio, let transcoder {
                var end = packet.count
                if packet[0] & 0x20 != 0 { end -= Int(packet[end - 1]) }
                guard end > headerEnd else { return }
                let at = clock.time(1, rtp: ts, arrival: arrival)
                lastAudioArrival = arrival
                let units = transcoder.transcode(Array(packet[headerEnd..<end]), at: Int64((at * 48).rounded()))
                sendAudio(units)
            }
        }
    }

    func producer(_ producer: Producer, senderReport: SenderReport) {
        let arrival = now
        lock.withLock {
            let track = producer === video ? 0 : 1
            clock.report(track, ntp: senderReport.ntpTimestamp, rtp: senderReport.rtpTimestamp, arrival: arrival)
        }
    }

    /// Twenty times a second: holes given up, silence while the audio is quiet, keyframes asked for.
    func tick() {
        let at = now
        let ask = lock.withLock { () -> Bool in
            guard !ended else { return false }
            for out in assembler.poll(at: at / 1000) { handle(out, arrival: at) }
            if let transcoder, let last = lastAudioArrival, at - last > Self.audioHold {
                sendAudio(transcoder.fill(until: Int64(((at - Self.audioHold) * 48).rounded())))
            }
            guard video != nil else { return false }
            var ask = false
            if let k = lastKeyframe, at - k >= Self.keyframeInterval * 1000 { ask = true }
            if waitingForKeyframe { ask = true }
            if publisher.source.newestViewerID > newestViewer {
                newestViewer = publisher.source.newestViewerID
                ask = true
            }
            // The producer sends at most one PLI per 500 ms; the count here is of the times one was wanted.
            if ask, lastRequest.map({ at - $0 >= 500 }) ?? true {
                lastRequest = at
                stats.keyframeRequests += 1
                return true
            }
            return false
        }
        if ask { video?.requestKeyframe() }
    }

    // MARK: - Video (under the lock)

    func handle(_ out: FrameAssembler.Output, arrival: Double) {
        switch out {
        case .gaveUp(let dropped):
            stats.framesGivenUp += 1
            logger.info("WHIP to hub: a frame given up", metadata: [
                "stream": "\(key)", "missing": "\(assembler.lastHole.map { "\($0.missing & 0xFFFF)" } ?? "?")",
                "highest": "\(assembler.lastHole.map { "\($0.highest & 0xFFFF)" } ?? "?")", "packetsDropped": "\(dropped)",
                "waitedMs": "\(assembler.lastHole.map { Int($0.blocked * 1000) } ?? -1)",
                "nack": "\(assembler.lastHole.map { video?.describeMissing(UInt16(truncatingIfNeeded: $0.missing)) ?? "-" } ?? "-")",
                "inHistory": "\(assembler.lastHole.map { video?.stored(UInt16(truncatingIfNeeded: $0.missing)) != nil } ?? false)", "late": "\(assembler.late)"])
            waitingForKeyframe = true
        case .cutShort(let dropped):
            stats.framesCutShort += 1
            logger.debug("WHIP to hub: a frame the publisher cut short", metadata: ["stream": "\(key)", "packetsDropped": "\(dropped)"])
            waitingForKeyframe = true
        case .frame(let packets):
            frame(packets, arrival: arrival)
        }
    }

    func frame(_ packets: [FrameAssembler.Packet], arrival: Double) {
        var depacketizer = H264Depacketizer()
        var unit: H264Depacketizer.AccessUnit?
        var seq: UInt16 = 0
        for (i, p) in packets.enumerated() {
            guard let headerEnd = RTPPacket.headerLength(p.bytes) else { continue }
            var end = p.bytes.count
            if p.bytes[0] & 0x20 != 0 { end -= Int(p.bytes[end - 1]) }
            // Padding alone (bandwidth probing on the media SSRC) is not part of the picture.
            guard end > headerEnd else { continue }
            do {
                unit = try depacketizer.push(sequenceNumber: seq, timestamp: packets.last!.timestamp, marker: i == packets.count - 1,
                                             payload: p.bytes[headerEnd..<end])
            } catch {
                stats.brokenFrames += 1
                stats.lastBrokenFrame = Self.describe(error, at: i, in: packets)
                if arrival - (lastBrokenLog ?? -.infinity) >= 10_000 {
                    lastBrokenLog = arrival
                    logger.warning("WHIP to hub: a frame the depacketizer refused (the ingest waits for a keyframe)", metadata: [
                        "stream": "\(key)", "brokenFrames": "\(stats.brokenFrames)", "frame": "\(stats.lastBrokenFrame ?? "")"])
                }
                waitingForKeyframe = true
                return
            }
            seq &+= 1
        }
        guard let unit else { return }
        var keyframe = false
        var nals: [[UInt8]] = []
        var newSPS: [UInt8]?, newPPS: [UInt8]?
        // SPS and PPS stay in the sample too (before the IDR, where the browser put them): a decoder that does not
        // follow a new sequence header or init section (ffmpeg's HLS reader over a new EXT-X-MAP) still finds the
        // new resolution in-band.
        for n in unit.nalUnits where !n.isEmpty {
            switch n[0] & 0x1F {
            case 7:
                newSPS = n
                nals.append(n)
            case 8:
                newPPS = n
                nals.append(n)
            case 9, 12: continue  // access unit delimiter, filler: nothing a FLV or MP4 sample needs
            case 5:
                keyframe = true
                nals.append(n)
            default: nals.append(n)
            }
        }
        if let newSPS, newSPS != sps {
            sps = newSPS
            configSent = false
        }
        if let newPPS, newPPS != pps {
            pps = newPPS
            configSent = false
        }
        guard nals.contains(where: { ![7, 8].contains($0[0] & 0x1F) }) else { return }
        if waitingForKeyframe && !keyframe || keyframe && (sps == nil || pps == nil) {
            stats.framesWithoutKeyframe += 1
            waitingForKeyframe = true
            return
        }
        waitingForKeyframe = false
        let at = clock.time(0, rtp: unit.timestamp, arrival: arrival)
        let ms = max(Int64(at.rounded()), lastVideo + 1, 0)
        lastVideo = ms
        if keyframe, !configSent, let sps, let pps {
            sendVideoConfig(sps: sps, pps: pps, at: ms)
        }
        if keyframe {
            stats.keyframes += 1
            lastKeyframe = arrival
        }
        stats.frames += 1
        var body = ByteBuffer()
        body.reserveCapacity(5 + nals.reduce(0) { $0 + 4 + $1.count })
        body.writeBytes([keyframe ? 0x17 : 0x27, 0x01, 0, 0, 0])
        for n in nals {
            body.writeInteger(UInt32(n.count))
            body.writeBytes(n)
        }
        publisher.send(.video, timestamp: UInt32(truncatingIfNeeded: ms), payload: body)
    }

    /// A refused frame for the stats and the log: the error, the packet it came at, and each packet as
    /// `sequence[M]:first payload bytes in hex` (an FU-A's second byte is its fragment header).
    static func describe(_ error: H264Depacketizer.Failure, at index: Int, in packets: [FrameAssembler.Packet]) -> String {
        let shown = packets.prefix(12).map { p -> String in
            let header = RTPPacket.headerLength(p.bytes) ?? p.bytes.count
            let head = p.bytes.dropFirst(header).prefix(3).map { String(format: "%02x", $0) }.joined()
            return "\(p.sequence & 0xFFFF)\(p.marker ? "M" : ""):\(head)\(p.bytes[0] & 0x20 != 0 ? "+pad" : "")"
        }
        let more = packets.count > 12 ? " +\(packets.count - 12) more" : ""
        return "\(error) at packet \(index + 1) of \(packets.count): \(shown.joined(separator: " "))\(more)"
    }

    func sendVideoConfig(sps: [UInt8], pps: [UInt8], at ms: Int64) {
        guard sps.count >= 4 else { return }
        let record = H264.AVCDecoderConfigurationRecord(profileIndication: sps[1], profileCompatibility: sps[2], levelIndication: sps[3],
                                                        nalLengthSize: 4, sequenceParameterSets: [sps], pictureParameterSets: [pps])
        var body = ByteBuffer(bytes: [0x17, 0x00, 0, 0, 0])
        record.write(to: &body)
        publisher.send(.video, timestamp: UInt32(truncatingIfNeeded: ms), payload: body)
        configSent = true
        stats.configurations += 1
        let parsed = try? H264.SequenceParameterSet(parsing: sps)
        if stats.configurations > 1 {
            logger.info("WHIP to hub: new video configuration", metadata: [
                "stream": "\(key)", "from": "\(stats.width ?? 0)x\(stats.height ?? 0)", "to": "\(parsed?.width ?? 0)x\(parsed?.height ?? 0)",
            ])
        }
        (stats.width, stats.height) = (parsed?.width, parsed?.height)
        if !audioConfigSent, let transcoder { sendAudioConfig(transcoder.config, at: ms) }
    }

    // MARK: - Audio (under the lock)

    func sendAudioConfig(_ config: [UInt8], at ms: Int64) {
        publisher.send(.audio, timestamp: UInt32(truncatingIfNeeded: max(ms, 0)), payload: ByteBuffer(bytes: [0xAF, 0x00] + config))
        audioConfigSent = true
    }

    func sendAudio(_ units: [OpusToAAC.AccessUnit]) {
        guard !units.isEmpty else { return }
        // With video, audio waits for the first keyframe: the stream's first frames say it has video.
        if !audioConfigSent {
            guard video == nil, let transcoder else { return }
            sendAudioConfig(transcoder.config, at: units[0].timestamp)
        }
        for u in units where u.timestamp >= 0 {
            var body = ByteBuffer(bytes: [0xAF, 0x01])
            body.writeBytes(u.payload)
            publisher.send(.audio, timestamp: UInt32(truncatingIfNeeded: u.timestamp), payload: body)
        }
    }
}
