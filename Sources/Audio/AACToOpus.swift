/// One stream's AAC transcoded to Opus: access units decoded (``AACDecoder``), resampled to 48 kHz stereo and
/// encoded in 20 ms packets (``OpusEncoder``), each stamped on the stream's own timeline in 48 kHz ticks
/// (milliseconds × 48), so that audio and video share one clock.
///
/// The samples decoded are the clock; the publisher's timestamps keep it honest. An access unit that starts
/// within ``Options/tolerance`` of where the decoded samples reached is appended as it is (FLV's whole
/// milliseconds wander around a 23.2 ms frame). A later one (a frame lost or not decodable) is preceded by
/// silence up to its time; an earlier one (the publisher's clock slower than its samples) is left out. A jump
/// beyond ``Options/maxFill`` either way (a republish after an outage) restarts the clock at the new time.
///
/// Not thread-safe: one owner feeds it in order.
public final class AACToOpus {
    public struct Options: Sendable, Equatable {
        /// Opus bitrate: 96 kbit/s is transparent for stereo music and generous for speech (Opus's own guidance
        /// puts fullband stereo music at 64-128); browsers' default 32 kbit/s is tuned for voice calls.
        public var bitrate = 96_000
        /// How far (ms) an access unit's timestamp may be from the decoded samples' position before the gap is
        /// filled or the access unit dropped: above FLV's rounding to whole milliseconds, below one AAC frame
        /// (21.3 ms at 48 kHz), so that a single lost frame is filled.
        public var tolerance: Int64 = 15
        /// The longest gap (ms) filled with silence; a longer one restarts the clock. The silence goes out at
        /// once, when the audio resumes, so a long fill would reach the browser as a burst of late packets, which
        /// its jitter buffer takes for network jitter and answers with delay. A few lost frames are filled; an
        /// outage is a jump in RTP time, which the browser handles as a new talkspurt.
        public var maxFill: Int64 = 200
        public init() {}
    }

    /// A 20 ms Opus packet. `timestamp` is the stream time of its first decoded sample in 48 kHz ticks
    /// (milliseconds × 48, not wrapped): the encoder's look-ahead is taken off, so a decoder's output lines up
    /// with the video.
    public struct Packet: Sendable, Equatable {
        public var timestamp: Int64
        public var payload: [UInt8]
    }

    public struct Stats: Sendable, Codable, Equatable {
        public var accessUnits = 0
        public var decodeErrors = 0
        public var packets = 0
        public var bytes = 0
        /// Silence put in for lost or undecodable access units, and audio left out where timestamps lagged.
        public var silenceMs = 0.0
        public var droppedMs = 0.0
        /// Times the clock restarted at a timestamp far from the samples (an outage, a republish).
        public var restarts = 0
        /// AudioSpecificConfigs taken (1, plus one per change).
        public var configurations = 0
        /// What the publisher sends, from the last decoded access unit.
        public var inputRate = 0
        public var inputChannels = 0
        public var bitrate = 0
    }

    public let options: Options
    let encoder: OpusEncoder
    /// The encoder's look-ahead in 48 kHz samples (312 for libopus 1.3).
    public let lookahead: Int64
    var decoder: AACDecoder?
    var config: [UInt8]?
    var configFailure: AudioError?
    /// Interleaved stereo not yet encoded, and the stream time (48 kHz) just after its last sample.
    var pending: [Float] = []
    var end: Int64?
    public private(set) var stats = Stats()

    static let ticksPerMs: Int64 = 48
    static let frame = OpusEncoder.frameSamples

    public init(options: Options = Options()) throws(AudioError) {
        self.options = options
        encoder = try OpusEncoder(bitrate: options.bitrate)
        lookahead = Int64(encoder.lookahead)
        stats.bitrate = encoder.bitrate
        pending.reserveCapacity(8 * Self.frame)
    }

    /// The stream's AudioSpecificConfig. A different one (a republish at another rate) replaces the decoder;
    /// the same one again changes nothing. The clock goes on either way.
    public func configure(_ config: [UInt8]) throws(AudioError) {
        if config == self.config, decoder != nil || configFailure != nil {
            if let configFailure { throw configFailure }
            return
        }
        self.config = config
        decoder = nil
        configFailure = nil
        do {
            decoder = try AACDecoder(config: config)
            stats.configurations += 1
        } catch {
            configFailure = error
            throw error
        }
    }

    /// Decodes one access unit, stamped `timestamp` ms on the stream's timeline, and returns the packets it
    /// completes (none, one or a few).
    public func transcode(_ accessUnit: some Collection<UInt8>, timestamp: Int64) throws(AudioError) -> [Packet] {
        guard let decoder else { throw configFailure ?? .notConfigured }
        stats.accessUnits += 1
        let pcm: ArraySlice<Float>
        do { pcm = try decoder.decode(accessUnit) } catch {
            stats.decodeErrors += 1
            throw error
        }
        stats.inputRate = decoder.inputRate
        stats.inputChannels = decoder.inputChannels
        let at = timestamp * Self.ticksPerMs
        if let end {
            let drift = at - end
            if abs(drift) > options.maxFill * Self.ticksPerMs {
                pending.removeAll(keepingCapacity: true)
                self.end = at
                stats.restarts += 1
            } else if drift > options.tolerance * Self.ticksPerMs {
                pending.append(contentsOf: repeatElement(0, count: 2 * Int(drift)))
                self.end = at
                stats.silenceMs += Double(drift) / Double(Self.ticksPerMs)
            } else if drift < -options.tolerance * Self.ticksPerMs {
                stats.droppedMs += Double(pcm.count / 2) / Double(Self.ticksPerMs)
                return []
            }
        } else {
            end = at
        }
        pending.append(contentsOf: pcm)
        end! += Int64(pcm.count / 2)
        var packets: [Packet] = []
        var used = 0
        while pending.count - used >= 2 * Self.frame {
            let start = end! - Int64((pending.count - used) / 2)
            let payload = try encoder.encode(pending[used..<(used + 2 * Self.frame)])
            used += 2 * Self.frame
            packets.append(Packet(timestamp: start - lookahead, payload: payload))
            stats.packets += 1
            stats.bytes += payload.count
        }
        pending.removeFirst(used)
        return packets
    }
}
