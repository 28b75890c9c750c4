import Codecs
import FLV
import MPEGTS
import NIOCore
import StreamHub

/// Settings of the HLS segmenter.
public struct SegmenterConfiguration: Sendable, Equatable {
    /// EXT-X-TARGETDURATION in seconds, fixed for the life of the playlist (RFC 8216 6.2.1). A segment is cut
    /// before it would exceed it, at a keyframe if there is one in time and otherwise where it stands.
    public var targetDuration = 6
    /// A segment ends at the first keyframe after this many milliseconds: with 1-2 s GOPs, segments of about
    /// 2 s keep players close to live.
    public var minimumDuration: Int64 = 2000
    /// Segments listed in the playlist.
    public var windowSegments = 6
    /// Segments kept in memory, including ones that have left the playlist, for players a little behind.
    public var retainedSegments = 10

    public init() {}
}

/// A finished MPEG-TS segment.
public struct Segment: Sendable {
    public var sequence: Int
    /// Seconds.
    public var duration: Double
    public var discontinuity: Bool
    /// Starts with a keyframe (a player can start decoding here).
    public var independent: Bool
    public var data: ByteBuffer
}

/// Cuts a live stream's frames into MPEG-TS segments and keeps the playlist window (pure: no clocks, no I/O).
///
/// Timestamps come from the hub, which already keeps one timeline across republishes; a republish still starts
/// a new segment marked as a discontinuity, because the new session brings its own codec configuration.
/// Video other than H.264 and audio other than AAC cannot go into MPEG-TS here: ``unsupported`` says which,
/// for the caller to log once, and the rest of the stream is still segmented.
public struct Segmenter: Sendable {
    public let configuration: SegmenterConfiguration
    /// Segment URIs are "\(name)-SEQUENCE.ts".
    public let name: String

    struct Building {
        var sequence: Int
        var firstDTS: Int64
        var lastDTS: Int64
        var frames = 0
        var data = ByteBuffer()
        var discontinuity: Bool
        var independent: Bool
    }

    var videoConfig: H264.AVCDecoderConfigurationRecord?
    var audioConfig: AAC.AudioSpecificConfig?
    var muxer: TSMuxer?
    var current: Building?
    var nextSequence = 0
    var pendingDiscontinuity = false
    var discontinuitiesBeforeWindow = 0
    public private(set) var segments: [Segment] = []
    /// Codecs seen that MPEG-TS segments do not carry here, e.g. ["video hevc"].
    public private(set) var unsupported: Set<String> = []
    /// Frames that could not be muxed (malformed access units, oversized AAC frames).
    public private(set) var droppedFrames = 0

    public init(name: String, configuration: SegmenterConfiguration = .init()) {
        self.name = name
        self.configuration = configuration
    }

    /// Feeds one frame; returns the segment it completed, if any.
    @discardableResult
    public mutating func add(_ frame: MediaFrame) -> Segment? {
        switch frame.kind {
        case .metadata:
            return nil
        case .video:
            guard let h = try? VideoTagHeader(parsing: frame.payload) else { droppedFrames += 1; return nil }
            guard h.isH264 else {
                unsupported.insert("video \(h.codec.name)")
                return nil
            }
            var body = frame.payload
            body.moveReaderIndex(forwardBy: min(h.headerSize, body.readableBytes))
            if h.packetType == .sequenceStart {
                return configure(video: try? H264.AVCDecoderConfigurationRecord(parsing: body))
            }
            guard h.packetType == .codedFrames, videoConfig != nil else { return nil }
            let dts = Int64(frame.timestamp)
            let sample = TSSample(kind: .video, dts: dts * 90, pts: (dts + Int64(h.compositionTime)) * 90,
                                  isKeyframe: frame.isKeyframe, data: body)
            return addVideo(sample, dtsMs: dts)
        case .audio:
            guard let h = try? AudioTagHeader(parsing: frame.payload) else { droppedFrames += 1; return nil }
            guard h.isAAC else {
                unsupported.insert("audio \(h.format.name)")
                return nil
            }
            var body = frame.payload
            body.moveReaderIndex(forwardBy: min(h.headerSize, body.readableBytes))
            if h.packetType == .sequenceStart {
                return configure(audio: try? AAC.AudioSpecificConfig(parsing: body))
            }
            guard audioConfig != nil else { return nil }
            let ts = Int64(frame.timestamp)
            return addAudio(TSSample(kind: .audio, dts: ts * 90, pts: ts * 90, isKeyframe: true, data: body), dtsMs: ts)
        }
    }

    /// The publisher left: finishes the segment in progress. The next session starts a discontinuity.
    @discardableResult
    public mutating func endSession() -> Segment? {
        let done = finishCurrent(nextDTS: nil)
        muxer = nil
        videoConfig = nil
        audioConfig = nil
        pendingDiscontinuity = true
        return done
    }

    /// The playlist of the last ``SegmenterConfiguration/windowSegments`` segments.
    public var playlist: MediaPlaylist {
        let window = segments.suffix(configuration.windowSegments)
        return MediaPlaylist(
            targetDuration: configuration.targetDuration,
            mediaSequence: window.first?.sequence ?? nextSequence,
            discontinuitySequence: discontinuitiesBeforeWindow,
            entries: window.map { .init(sequence: $0.sequence, duration: $0.duration, discontinuity: $0.discontinuity,
                                        uri: "\(name)-\($0.sequence).ts") },
            independentSegments: window.allSatisfy(\.independent))
    }

    public func segment(_ sequence: Int) -> Segment? { segments.first { $0.sequence == sequence } }

    // MARK: - Internals

    /// A new codec configuration ends the segment in progress (its tables no longer describe the stream) and
    /// the muxer is rebuilt around it; the next segment is marked as a discontinuity.
    mutating func configure(video: H264.AVCDecoderConfigurationRecord?) -> Segment? {
        guard let video, video != videoConfig else { return nil }
        videoConfig = video
        return reconfigure()
    }

    mutating func configure(audio: AAC.AudioSpecificConfig?) -> Segment? {
        guard let audio, audio != audioConfig else { return nil }
        audioConfig = audio
        return reconfigure()
    }

    mutating func reconfigure() -> Segment? {
        muxer = nil
        guard let done = finishCurrent(nextDTS: nil) else { return nil }
        pendingDiscontinuity = true
        return done
    }

    mutating func addVideo(_ sample: TSSample, dtsMs: Int64) -> Segment? {
        var done: Segment?
        if let c = current {
            let elapsed = dtsMs - c.firstDTS
            if sample.isKeyframe && elapsed >= configuration.minimumDuration {
                done = finishCurrent(nextDTS: dtsMs)
            } else if elapsed >= Int64(configuration.targetDuration) * 1000 {
                // The GOP is longer than the target duration allows: cut here, keyframe or not.
                done = finishCurrent(nextDTS: dtsMs)
            }
        }
        if current == nil {
            // The first segment of a session must start where a decoder can.
            guard sample.isKeyframe || done != nil else { return done }
            guard start(at: dtsMs, independent: sample.isKeyframe) else { return done }
        }
        write(sample, dtsMs: dtsMs)
        return done
    }

    mutating func addAudio(_ sample: TSSample, dtsMs: Int64) -> Segment? {
        var done: Segment?
        if videoConfig == nil {
            // Audio only: every frame is a start point.
            if let c = current, dtsMs - c.firstDTS >= configuration.minimumDuration {
                done = finishCurrent(nextDTS: dtsMs)
            }
            if current == nil, !start(at: dtsMs, independent: true) { return done }
        }
        guard current != nil else { return done }  // with video, audio waits for the first keyframe
        write(sample, dtsMs: dtsMs)
        return done
    }

    /// Opens a segment (and the muxer, if the configuration changed). False if nothing can be muxed.
    mutating func start(at dtsMs: Int64, independent: Bool) -> Bool {
        if muxer == nil {
            var audio = audioConfig
            if let a = audio, (try? ADTSWriter(config: a)) == nil {
                unsupported.insert("audio \(a.codecString) (not expressible in ADTS)")
                audio = nil
            }
            guard let m = try? TSMuxer(videoConfig: videoConfig, audioConfig: audio) else { return false }
            muxer = m
        }
        var b = Building(sequence: nextSequence, firstDTS: dtsMs, lastDTS: dtsMs, discontinuity: pendingDiscontinuity,
                         independent: independent)
        nextSequence += 1
        pendingDiscontinuity = false
        muxer!.writeTables(to: &b.data)
        current = b
        return true
    }

    mutating func write(_ sample: TSSample, dtsMs: Int64) {
        guard var c = current, muxer != nil else { return }
        current = nil  // write into a uniquely held buffer
        do {
            try muxer!.write(sample, to: &c.data)
            c.lastDTS = max(c.lastDTS, dtsMs)
            c.frames += 1
        } catch {
            droppedFrames += 1
        }
        current = c
    }

    /// Closes the segment in progress. Its duration runs to `nextDTS` (the first frame of the next segment), or
    /// for the last segment of a session to its last frame plus one average frame interval.
    mutating func finishCurrent(nextDTS: Int64?) -> Segment? {
        guard let c = current else { return nil }
        current = nil
        let span = c.lastDTS - c.firstDTS
        let end = nextDTS ?? (c.lastDTS + (c.frames > 1 ? span / Int64(c.frames - 1) : 0))
        let segment = Segment(sequence: c.sequence, duration: Double(max(0, end - c.firstDTS)) / 1000,
                              discontinuity: c.discontinuity, independent: c.independent, data: c.data)
        segments.append(segment)
        let window = configuration.windowSegments
        if segments.count > window, segments[segments.count - window - 1].discontinuity {
            discontinuitiesBeforeWindow += 1
        }
        if segments.count > max(configuration.retainedSegments, window) { segments.removeFirst() }
        return segment
    }
}
