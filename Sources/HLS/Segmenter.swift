import Codecs
import FLV
import NIOCore
import StreamHub

/// Cuts a live stream's frames into segments and parts, and keeps the window both playlists list (pure: no
/// clocks, no I/O; the caller passes the wall-clock time with each frame).
///
/// One cut serves both renditions: every part becomes a CMAF fragment (`moof` + `mdat`) for the low-latency
/// playlist, and the same frames, muxed into MPEG-TS, make the segment of the classic playlist. So a TS
/// segment and its fMP4 counterpart have the same number, duration and first frame.
///
/// Cutting rules:
/// - a segment starts at a keyframe once the one in progress has lasted ``SegmenterConfiguration/minimumDuration``,
///   and is cut where it stands before it would exceed the target duration (a GOP longer than that);
/// - a part ends before every keyframe (so a part is INDEPENDENT exactly when it starts with an IDR) and before
///   it would exceed ``SegmenterConfiguration/partTarget``. Parts close when the first frame after them arrives,
///   because that frame's timestamp is the part's end.
///
/// Timestamps come from the hub, which keeps one timeline across republishes; a republish still starts a new
/// segment marked as a discontinuity, with a new initialization section, because the new session brings its
/// own codec configuration. Video other than H.264 and audio other than AAC are left out: ``unsupported``
/// names them, for the caller to log once.
public struct Segmenter: Sendable {
    public let configuration: SegmenterConfiguration
    /// TS segment URIs are "\(name)-SEQUENCE.ts".
    public let name: String

    struct PendingSample {
        var isVideo: Bool
        var dts: Int64
        var compositionTime: Int32
        var isKeyframe: Bool
        var data: ByteBuffer
    }

    struct OpenPart {
        var index: Int
        var firstDTS: Int64
        var independent: Bool
        var samples: [PendingSample] = []
    }

    struct OpenSegment {
        var sequence: Int
        var firstDTS: Int64
        var discontinuity: Bool
        var independent: Bool
        var programDateTime: Int64
        var initID: Int
        var ts = ByteBuffer()
        var parts: [Part] = []
    }

    var videoConfig: H264.AVCDecoderConfigurationRecord?
    var audioConfig: AAC.AudioSpecificConfig?
    /// Track layout of the current initialization section; nil until a segment needs one.
    var tracks: FragmentBuilder?
    var tsMuxer: TSMuxerState?
    var open: OpenSegment?
    var part: OpenPart?
    var nextSequence = 0
    var nextInitID = 0
    var pendingDiscontinuity = false
    var discontinuitiesBeforeWindow = 0
    /// Sequence number of the first segment the playlists list.
    var windowStart = 0
    var wallClock: Int64 = 0
    var recentIntervals: [Int64] = []
    var lastTimelineDTS: Int64?
    public private(set) var segments: [Segment] = []
    public private(set) var initSections: [InitSection] = []
    /// Codecs seen that the segments do not carry here, e.g. ["video hevc"].
    public private(set) var unsupported: Set<String> = []
    /// Frames that could not be muxed (malformed access units, oversized AAC frames).
    public private(set) var droppedFrames = 0
    /// Changes whenever the playlists do (a part or segment finished, a session ended): lets the origin render
    /// each playlist once per change, however many clients ask.
    public private(set) var revision = 0

    public init(name: String, configuration: SegmenterConfiguration = .init()) {
        self.name = name
        self.configuration = configuration
    }

    /// Feeds one frame that arrived at `wallClock` (milliseconds since the epoch); returns the segment it
    /// completed, if any.
    @discardableResult
    public mutating func add(_ frame: MediaFrame, wallClock: Int64 = 0) -> Segment? {
        self.wallClock = wallClock
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
            let sample = PendingSample(isVideo: true, dts: Int64(frame.timestamp), compositionTime: h.compositionTime,
                                       isKeyframe: frame.isKeyframe, data: body)
            return addVideo(sample)
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
            return addAudio(PendingSample(isVideo: false, dts: Int64(frame.timestamp), compositionTime: 0,
                                          isKeyframe: true, data: body))
        }
    }

    /// The publisher left: finishes the part and segment in progress. The next session starts a discontinuity.
    @discardableResult
    public mutating func endSession() -> Segment? {
        let done = closeSegment(at: nil)
        lastTimelineDTS = nil
        tsMuxer = nil
        tracks = nil
        videoConfig = nil
        audioConfig = nil
        pendingDiscontinuity = true
        return done
    }

    // MARK: - Lookups

    public func segment(_ sequence: Int) -> Segment? { segments.first { $0.sequence == sequence } }

    /// A part of a finished segment or of the one in progress.
    public func part(segment sequence: Int, index: Int) -> Part? {
        if let open, open.sequence == sequence { return open.parts.indices.contains(index) ? open.parts[index] : nil }
        guard let s = segment(sequence), s.parts.indices.contains(index) else { return nil }
        return s.parts[index]
    }

    public func initSection(_ id: Int) -> InitSection? { initSections.first { $0.id == id } }

    /// The parts finished since ``nextPart`` read `from`, oldest first, as the origin announces them to P2P viewers.
    public func parts(since from: (segment: Int, index: Int)) -> [PartNotice] {
        var all: [(sequence: Int, pdt: Int64, initID: Int, parts: [Part])] = []
        for s in segments.reversed() {
            guard s.sequence >= from.segment else { break }
            all.insert((s.sequence, s.programDateTime, s.initID, s.parts), at: 0)
        }
        if let open, open.sequence >= from.segment { all.append((open.sequence, open.programDateTime, open.initID, open.parts)) }
        var out: [PartNotice] = []
        for s in all {
            var wall = Double(s.pdt)
            for p in s.parts {
                defer { wall += p.duration * 1000 }
                guard s.sequence > from.segment || p.index >= from.index else { continue }
                out.append(PartNotice(segment: s.sequence, index: p.index, bytes: p.data.readableBytes, sha256: p.sha256,
                                      durationMs: Int((p.duration * 1000).rounded()), independent: p.independent,
                                      wallClock: Int64(wall.rounded()), initID: s.initID))
            }
        }
        return out
    }

    /// The part the low-latency playlist hints at (EXT-X-PRELOAD-HINT): the one being built now.
    public var nextPart: (segment: Int, index: Int) {
        if let open { return (open.sequence, open.parts.count) }
        return (nextSequence, 0)
    }

    /// True when the playlist already lists segment `sequence` complete (`index` nil) or its part `index`, or
    /// anything later: the condition a blocking playlist reload waits for.
    public func contains(segment sequence: Int, part index: Int?) -> Bool {
        let lastComplete = segments.last?.sequence ?? -1
        guard let index else { return sequence <= lastComplete }
        if sequence <= lastComplete {
            // A part index past the end of a finished segment is satisfied by the next segment's first part.
            guard let s = segment(sequence), index >= s.parts.count else { return true }
            return open.map { !$0.parts.isEmpty } ?? false || segments.last!.sequence > sequence
        }
        guard let open, open.sequence == sequence else { return false }
        return index < open.parts.count
    }

    /// The newest segment (in progress, else finished), for telling far-future requests apart.
    public var lastSequence: Int? { open?.sequence ?? segments.last?.sequence }
    /// Parts finished in the segment in progress.
    public var openPartCount: Int { open?.parts.count ?? 0 }

    // MARK: - Cutting

    /// A new codec configuration ends the segment in progress (its tables and init section no longer describe
    /// the stream); the next segment is marked as a discontinuity.
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
        tsMuxer = nil
        tracks = nil
        guard let done = closeSegment(at: nil) else { return nil }
        pendingDiscontinuity = true
        return done
    }

    mutating func addVideo(_ sample: PendingSample) -> Segment? {
        noteTimeline(sample.dts)
        let done = advance(to: sample.dts, startPoint: sample.isKeyframe, segmentMayStart: sample.isKeyframe)
        if open == nil {
            // The first segment of a session must start where a decoder can.
            guard sample.isKeyframe, startSegment(at: sample.dts, independent: true) else { return done }
        }
        append(sample)
        return done
    }

    mutating func addAudio(_ sample: PendingSample) -> Segment? {
        guard videoConfig == nil else {
            // With video, audio rides in the part in progress and waits for the first keyframe.
            if open != nil { append(sample) }
            return nil
        }
        // Audio only: every frame is a start point; parts and segments are cut on the audio timeline.
        noteTimeline(sample.dts)
        let done = advance(to: sample.dts, startPoint: false, segmentMayStart: true)
        if open == nil, !startSegment(at: sample.dts, independent: true) { return done }
        append(sample)
        return done
    }

    /// Decides, before a frame at `dts` joins, whether it starts a new segment or a new part.
    mutating func advance(to dts: Int64, startPoint: Bool, segmentMayStart: Bool) -> Segment? {
        guard let seg = open, let current = part else { return nil }
        let elapsed = dts - seg.firstDTS
        if (segmentMayStart && elapsed >= configuration.minimumDuration)
            || elapsed >= Int64(configuration.targetDuration) * 1000 {
            let done = closeSegment(at: dts)
            // A cut forced inside a long GOP carries on where it stands: not a start point.
            _ = startSegment(at: dts, independent: startPoint || videoConfig == nil)
            return done
        }
        if startPoint {
            closePart(at: dts)
            startPart(at: dts, independent: true)
        } else if dts - current.firstDTS > configuration.partTarget {
            continuePart(at: dts)
        } else if dts + shortestInterval - current.firstDTS > configuration.partTarget {
            // This frame would end after the part target: it starts the next part.
            closePart(at: dts)
            startPart(at: dts, independent: false)
        }
        return nil
    }

    /// The shortest of the recent frame intervals on the cutting timeline (video, or audio without video):
    /// the least a frame adds to a part.
    var shortestInterval: Int64 { recentIntervals.min() ?? 0 }

    mutating func noteTimeline(_ dts: Int64) {
        if let last = lastTimelineDTS, dts > last {
            recentIntervals.append(dts - last)
            if recentIntervals.count > 8 { recentIntervals.removeFirst() }
        }
        lastTimelineDTS = dts
    }

    /// Opens a segment (and the muxers, if the configuration changed) with its first part. False if nothing
    /// can be muxed.
    mutating func startSegment(at dts: Int64, independent: Bool) -> Bool {
        if tracks == nil {
            guard let builder = try? FragmentBuilder(video: videoConfig, audio: audioConfig) else { return false }
            tracks = builder
            initSections.append(InitSection(id: nextInitID, data: builder.initSection, codecs: builder.codecs))
            nextInitID += 1
        }
        if tsMuxer == nil {
            guard let muxer = TSMuxerState(video: videoConfig, audio: audioConfig) else { return false }
            if let note = muxer.leftOut { unsupported.insert(note) }
            tsMuxer = muxer
        }
        var seg = OpenSegment(sequence: nextSequence, firstDTS: dts, discontinuity: pendingDiscontinuity,
                              independent: independent, programDateTime: wallClock, initID: nextInitID - 1)
        tsMuxer!.writeTables(to: &seg.ts)
        open = seg
        nextSequence += 1
        pendingDiscontinuity = false
        part = OpenPart(index: 0, firstDTS: dts, independent: independent)
        return true
    }

    mutating func startPart(at dts: Int64, independent: Bool) {
        part = OpenPart(index: open?.parts.count ?? 0, firstDTS: dts, independent: independent)
    }

    mutating func append(_ sample: PendingSample) {
        guard part != nil else { return }
        part!.samples.append(sample)
    }

    /// A frame at `dts` reached the part target. If the part would last longer than the target, its last
    /// video frame moves on to start the next part, so that no part exceeds PART-TARGET.
    mutating func continuePart(at dts: Int64) {
        guard var current = part else { return }
        if dts - current.firstDTS > configuration.partTarget,
            let i = current.samples.lastIndex(where: \.isVideo), i > 0, current.samples[i].dts > current.firstDTS {
            let carried = Array(current.samples[i...])
            current.samples.removeSubrange(i...)
            part = current
            closePart(at: carried[0].dts)
            startPart(at: carried[0].dts, independent: false)
            part!.samples = carried
        } else {
            closePart(at: dts)
            startPart(at: dts, independent: false)
        }
    }

    /// Finishes the part in progress, which ends at `end` (the next frame's timestamp), or, at the end of a
    /// session, one frame interval after its last frame. A part that would exceed the part target (a keyframe
    /// late on an irregular timeline) is split before its last video frame.
    mutating func closePart(at end: Int64?) {
        guard var current = part, open != nil else { return }
        part = nil
        guard !current.samples.isEmpty else { return }
        let end = end ?? estimatedEnd(of: current)
        if end - current.firstDTS > configuration.partTarget,
            let i = current.samples.lastIndex(where: \.isVideo), i > 0, current.samples[i].dts > current.firstDTS {
            let tail = OpenPart(index: current.index + 1, firstDTS: current.samples[i].dts, independent: false,
                                samples: Array(current.samples[i...]))
            current.samples.removeSubrange(i...)
            emit(current, end: tail.firstDTS)
            emit(tail, end: end)
        } else {
            emit(current, end: end)
        }
    }

    /// Makes a closed part into its CMAF fragment and appends its frames to the TS segment.
    mutating func emit(_ p: OpenPart, end: Int64) {
        guard var builder = tracks else { return }
        let fragment = builder.fragment(p.samples, endDTS: end)
        tracks = builder
        droppedFrames += fragment.dropped
        revision += 1
        open!.parts.append(Part(segment: open!.sequence, index: p.index, duration: Double(max(0, end - p.firstDTS)) / 1000,
                                independent: p.independent, data: fragment.data, sha256: fragment.sha256))
        for sample in p.samples where tsMuxer?.write(sample, to: &open!.ts) == false {
            droppedFrames += 1
        }
    }

    /// Moves the window's start forward while what stays lists at least ``SegmenterConfiguration/windowSegments``
    /// segments and three target durations (RFC 8216 6.2.2), counting the discontinuities that leave it.
    mutating func advanceWindow() {
        let minimum = Double(3 * configuration.targetDuration)
        var listed = segments.filter { $0.sequence >= windowStart }
        while listed.count > configuration.windowSegments,
            listed.dropFirst().reduce(0, { $0 + $1.duration }) >= minimum {
            if listed[0].discontinuity { discontinuitiesBeforeWindow += 1 }
            windowStart = listed[0].sequence + 1
            listed.removeFirst()
        }
    }

    func estimatedEnd(of p: OpenPart) -> Int64 {
        let timeline = p.samples.contains(where: \.isVideo) ? p.samples.filter(\.isVideo) : p.samples
        guard let last = timeline.last?.dts else { return p.firstDTS }
        let span = last - (timeline.first?.dts ?? last)
        return last + (timeline.count > 1 ? span / Int64(timeline.count - 1) : max(1, shortestInterval))
    }

    /// Closes the part and segment in progress; the segment ends at `end` (the first frame of the next one) or,
    /// at the end of a session, where its last part ends.
    mutating func closeSegment(at end: Int64?) -> Segment? {
        var endDTS = end
        if endDTS == nil, let p = part { endDTS = estimatedEnd(of: p) }
        closePart(at: endDTS)
        guard let seg = open else { return nil }
        open = nil
        guard !seg.parts.isEmpty else {
            // Nothing was muxed: give the number back, so that media sequence numbers stay contiguous.
            nextSequence = seg.sequence
            pendingDiscontinuity = pendingDiscontinuity || seg.discontinuity
            return nil
        }
        let finalEnd = endDTS ?? seg.firstDTS
        let segment = Segment(sequence: seg.sequence, duration: Double(max(0, finalEnd - seg.firstDTS)) / 1000,
                              discontinuity: seg.discontinuity, independent: seg.independent,
                              programDateTime: seg.programDateTime, data: seg.ts, parts: seg.parts, initID: seg.initID)
        segments.append(segment)
        revision += 1
        advanceWindow()
        let kept = segments.count(where: { $0.sequence >= windowStart }) + configuration.retainedAfterWindow
        if segments.count > kept { segments.removeFirst(segments.count - kept) }
        let needed = Set(segments.map(\.initID)).union([nextInitID - 1])
        initSections.removeAll { !needed.contains($0.id) }
        return segment
    }
}
