import ArgumentParser
import Audio
import Foundation

/// The RTMP-to-WebRTC audio transcoder on one core: each input (an FLV file of AAC) looped to `seconds` of audio
/// through ``AACToOpus`` (libavcodec decode, libswresample to 48 kHz stereo, libopus), `rounds` alternating runs.
/// CPU is the thread's own (CLOCK_THREAD_CPUTIME_ID). The delay is what transcoding adds to passing the AAC through,
/// sample by sample: from the moment the sample's access unit is complete (when a live encoder sends it, and when it
/// could go on as it is) to the moment its Opus packet is complete (the arrival of the access unit that fills it),
/// averaged over the packet's 20 ms. The encoder's look-ahead (6.5 ms) and the CPU time come on top.
struct TranscodeThroughput: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "transcode")

    @Option(help: "AAC FLV files (ffmpeg -c:a aac -f flv); repeatable.") var input: [String]
    @Option(help: "Opus bitrate, kbit/s.") var kbps = 96
    @Option(help: "Seconds of audio per run.") var seconds = 60
    @Option(help: "Runs per input.") var rounds = 5

    struct Stream {
        var name: String
        var config: [UInt8]
        var units: [(timestamp: Int64, bytes: [UInt8])]
        var durationMs: Int64
    }

    static func load(_ path: String) throws -> Stream {
        let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        guard data.count > 13, data[0] == 0x46 else { throw ValidationError("\(path): not FLV") }
        var i = Int(data[5]) << 24 | Int(data[6]) << 16 | Int(data[7]) << 8 | Int(data[8]) + 4
        var config: [UInt8] = []
        var units: [(Int64, [UInt8])] = []
        while i + 11 <= data.count {
            let size = Int(data[i + 1]) << 16 | Int(data[i + 2]) << 8 | Int(data[i + 3])
            let ts = Int64(data[i + 7]) << 24 | Int64(data[i + 4]) << 16 | Int64(data[i + 5]) << 8 | Int64(data[i + 6])
            guard i + 11 + size + 4 <= data.count else { break }
            let body = Array(data[(i + 11)..<(i + 11 + size)])
            if data[i] & 0x1F == 8, body.count > 2, body[0] >> 4 == 10 {
                if body[1] == 0 { config = Array(body[2...]) } else { units.append((ts, Array(body[2...]))) }
            }
            i += 11 + size + 4
        }
        guard !config.isEmpty, let last = units.last else { throw ValidationError("\(path): no AAC") }
        return Stream(name: URL(fileURLWithPath: path).lastPathComponent, config: config, units: units,
                      durationMs: last.0 + (units.count > 1 ? last.0 - units[units.count - 2].0 : 23))
    }

    static func threadCPU() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    func run() throws {
        let streams = try input.map(Self.load)
        var cpu: [String: [Double]] = [:]
        print("| input | run | audio s | CPU ms | % of a core | packets | wait mean (ms) | wait max (ms) |")
        print("|---|---|---|---|---|---|---|---|")
        var delays: [String: (mean: Double, max: Double, lookahead: Double)] = [:]
        for round in 1...rounds {
            for s in streams {
                var options = AACToOpus.Options()
                options.bitrate = kbps * 1000
                let t = try AACToOpus(options: options)
                try t.configure(s.config)
                let frameMs = Double(s.units.count > 1 ? s.units[1].timestamp - s.units[0].timestamp : 23)
                var offset: Int64 = 0
                var packets = 0
                var delaySum = 0.0, delayMax = 0.0
                // The access units fed so far: [start, end) in ms on the stream's timeline, oldest first.
                var fed: [(start: Double, end: Double)] = []
                let start = Self.threadCPU()
                while offset < Int64(seconds) * 1000 {
                    for u in s.units {
                        let begin = Double(u.timestamp + offset)
                        fed.append((begin, begin + frameMs))
                        if fed.count > 16 { fed.removeFirst(fed.count - 16) }
                        let made = try t.transcode(u.bytes, timestamp: u.timestamp + offset)
                        let completed = begin + frameMs
                        for p in made {
                            // Each of the packet's 20 ms of samples could have gone when its own access unit was
                            // complete; it goes now. Averaged over the packet, by the share of each access unit.
                            let from = Double(p.timestamp + t.lookahead) / 48, to = from + 20
                            var wait = 0.0
                            for f in fed where f.end > from && f.start < to {
                                wait += (min(f.end, to) - max(f.start, from)) / 20 * (completed - f.end)
                            }
                            delaySum += wait
                            delayMax = max(delayMax, wait)
                        }
                        packets += made.count
                    }
                    offset += s.durationMs
                }
                let used = Self.threadCPU() - start
                let audio = Double(offset) / 1000
                cpu[s.name, default: []].append(used / audio * 100)
                delays[s.name] = (delaySum / Double(max(1, packets)), delayMax, Double(t.lookahead) / 48)
                print("| \(s.name) | \(round) | \(Int(audio)) | \(Int(used * 1000)) | \(String(format: "%.2f", used / audio * 100)) | \(packets) | "
                      + "\(String(format: "%.1f", delaySum / Double(max(1, packets)))) | \(String(format: "%.1f", delayMax)) |")
            }
        }
        print("\nMedians over \(rounds) runs, Opus at \(kbps) kbit/s (CPU per stream, whatever its number of viewers):")
        for s in streams {
            let sorted = cpu[s.name, default: []].sorted()
            let d = delays[s.name]!
            print("- \(s.name): \(String(format: "%.2f", sorted[sorted.count / 2])) % of a core; a sample waits "
                  + "\(String(format: "%.1f", d.mean)) ms on average for its packet (a packet's average at most \(String(format: "%.1f", d.max)) ms), "
                  + "plus the encoder's look-ahead \(String(format: "%.1f", d.lookahead)) ms")
        }
    }
}
