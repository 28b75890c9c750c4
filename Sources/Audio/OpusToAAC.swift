/// A browser's Opus transcoded to AAC for the hub's viewers (RTMP, HTTP-FLV, HLS): packets decoded (libopus, 48 kHz
/// stereo), re-encoded in 1024-sample access units (``AACEncoder``), each stamped in milliseconds on the stream's
/// timeline.
///
/// The AAC timeline never has a hole: Media Source Extensions and HLS players stall at a gap in the audio. The
/// stream time of each packet (its RTP time mapped by the caller) is compared with where the samples written so
/// far reached. A packet that starts within ``Options/tolerance`` of it is appended as it is; a later one is
/// preceded by what is missing: concealment from libopus for a few lost packets, silence for longer gaps (DTX,
/// a muted or stopped track); an earlier one loses the part already written (it came too late, after
/// ``fill(until:)`` had covered its time). ``fill(until:)`` lets the owner keep the timeline going in real time
/// while no packets come.
///
/// Not thread-safe: one owner feeds it in order.
public final class OpusToAAC {
    public struct Options: Sendable, Equatable {
        /// AAC bitrate for 48 kHz stereo: 128 kbit/s, what streaming services ask of encoders.
        public var bitrate = 128_000
        /// How far (48 kHz ticks) a packet may start from where the samples reached before the gap is filled or
        /// the overlap dropped: 5 ms.
        public var tolerance: Int64 = 240
        /// Gaps up to this long (ticks) are concealed by libopus (packet loss); longer ones are silence.
        public var concealUpTo: Int64 = 3 * 960
        /// A gap longer than this (ticks) is not filled: the timeline restarts at the packet (an outage the
        /// owner's real-time filling did not cover, such as a publisher's clock jumping).
        public var maxFill: Int64 = 10 * 48_000
        public init() {}
    }

    public struct AccessUnit: Sendable, Equatable {
        /// Milliseconds on the stream's timeline.
        public var timestamp: Int64
        public var payload: [UInt8]
    }

    public struct Stats: Sendable, Codable, Equatable {
        public var packets = 0
        public var decodeErrors = 0
        public var accessUnits = 0
        public var bytes = 0
        /// Time concealed by libopus (lost packets), filled with silence (DTX, mute, outages), and left out where
        /// a packet came after its time was written.
        public var concealedMs = 0.0
        public var silenceMs = 0.0
        public var droppedMs = 0.0
        /// Times the timeline restarted after a gap too long to fill.
        public var restarts = 0
        public var bitrate = 0
    }

    public let options: Options
    let decoder: OpusDecoder
    let encoder: AACEncoder
    /// The AudioSpecificConfig of what comes out (AAC-LC, 48 kHz, stereo).
    public var config: [UInt8] { encoder.config }
    /// Stream time (48 kHz ticks) of the first sample fed to the encoder, and samples fed since.
    var origin: Int64?
    var fed: Int64 = 0
    /// Interleaved stereo not yet a whole access unit.
    var pending: [Float] = []
    public private(set) var stats = Stats()

    public static let ticksPerMs: Int64 = 48

    public init(options: Options = Options()) throws(AudioError) {
        self.options = options
        decoder = try OpusDecoder()
        encoder = try AACEncoder(bitrate: options.bitrate)
        stats.bitrate = encoder.bitrate
        pending.reserveCapacity(4 * encoder.frameSize)
    }

    /// Where the next sample goes, in 48 kHz ticks of stream time; nil before the first packet.
    public var position: Int64? { origin.map { $0 + fed + Int64(pending.count / 2) } }

    /// One Opus packet whose first sample is at `tick` (48 kHz ticks of stream time). Returns the access units it
    /// completes. A packet libopus cannot decode counts as lost (its time is concealed when the next one comes).
    public func transcode(_ packet: [UInt8], at tick: Int64) -> [AccessUnit] {
        stats.packets += 1
        var out: [AccessUnit] = []
        if let position {
            let gap = tick - position
            if gap > options.maxFill {
                out += flushForRestart()
                // The encoder counts on: its samples from here map to the packet's time.
                origin = tick - fed
                stats.restarts += 1
            } else if gap > options.tolerance {
                out += fill(gap, conceal: gap <= options.concealUpTo)
            }
        } else {
            origin = tick
        }
        let pcm: ArraySlice<Float>
        do { pcm = try decoder.decode(packet) } catch {
            stats.decodeErrors += 1
            return out
        }
        // Samples of this packet whose time was already written (it came late) are left out.
        let behind = (position ?? tick) - tick
        let skip = behind > options.tolerance ? min(pcm.count / 2, Int(behind)) : 0
        if skip > 0 { stats.droppedMs += Double(skip) / Double(Self.ticksPerMs) }
        pending.append(contentsOf: pcm.dropFirst(2 * skip))
        return out + encodePending()
    }

    /// Silence up to `tick` when the samples have not reached it: the timeline goes on while no packets come.
    public func fill(until tick: Int64) -> [AccessUnit] {
        guard let position, tick > position else { return [] }
        return fill(tick - position, conceal: false) + encodePending()
    }

    func fill(_ ticks: Int64, conceal: Bool) -> [AccessUnit] {
        var left = Int(ticks)
        if conceal {
            while left >= OpusEncoder.frameSamples, let pcm = try? decoder.decode(nil) {
                let n = min(left, pcm.count / 2)
                pending.append(contentsOf: pcm.prefix(2 * n))
                left -= n
                stats.concealedMs += Double(n) / Double(Self.ticksPerMs)
            }
        }
        if left > 0 {
            pending.append(contentsOf: repeatElement(0, count: 2 * left))
            stats.silenceMs += Double(left) / Double(Self.ticksPerMs)
        }
        return encodePending()
    }

    func encodePending() -> [AccessUnit] {
        var out: [AccessUnit] = []
        let size = encoder.frameSize
        var used = 0
        while pending.count - used >= 2 * size {
            let chunk = pending[used..<(used + 2 * size)]
            used += 2 * size
            fed += Int64(size)
            guard let au = try? encoder.encode(chunk) else { continue }
            let tick = (origin ?? 0) + au.position
            stats.accessUnits += 1
            stats.bytes += au.payload.count
            out.append(AccessUnit(timestamp: Self.milliseconds(tick), payload: au.payload))
        }
        if used > 0 { pending.removeFirst(used) }
        return out
    }

    /// A gap too long to fill: what is pending is padded to a whole access unit and encoded on the old timeline.
    func flushForRestart() -> [AccessUnit] {
        let size = encoder.frameSize
        let partial = (pending.count / 2) % size
        if partial > 0 { pending.append(contentsOf: repeatElement(0, count: 2 * (size - partial))) }
        return encodePending()
    }

    static func milliseconds(_ tick: Int64) -> Int64 {
        tick >= 0 ? tick / ticksPerMs : -((-tick + ticksPerMs - 1) / ticksPerMs)
    }
}
