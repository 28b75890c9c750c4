import ArgumentParser
import DTLS
import Foundation
import SRTP

/// SRTP protect and unprotect throughput on one core, for each protection profile: `rounds` alternating runs of
/// `packets` RTP packets of `size` bytes through libsrtp2. Prints a Markdown table row per run and the medians.
struct SRTPThroughput: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "srtp")

    @Option(help: "RTP packet size in bytes (header included).") var size = 1200
    @Option(help: "Packets per run.") var packets = 200_000
    @Option(help: "Runs per profile and direction.") var rounds = 5

    func run() throws {
        var results: [String: [Double]] = [:]
        print("| profile | direction | packets/s | Gbit/s of payload |")
        print("|---|---|---|---|")
        for round in 0..<rounds {
            for profile in SRTPProfile.allCases {
                let key = (0..<(profile.keyLength + profile.saltLength)).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ round) }
                let sender = try SRTPContext(profile: profile, masterKey: key, direction: .outbound)
                let receiver = try SRTPContext(profile: profile, masterKey: key, direction: .inbound, replayWindow: 1024)
                var protected: [[UInt8]] = []
                protected.reserveCapacity(packets)
                let template = [UInt8](repeating: 0x5A, count: size)
                // Protect: a fresh sequence number each time (the replay-protected index of the receiver follows).
                var start = ContinuousClock.now
                for i in 0..<packets {
                    var p = template
                    p[0] = 0x80; p[1] = 96
                    p[2] = UInt8(truncatingIfNeeded: i >> 8); p[3] = UInt8(truncatingIfNeeded: i)
                    p[8] = 0x12; p[9] = 0x34; p[10] = 0x56; p[11] = 0x78
                    try sender.protectRTP(&p)
                    protected.append(p)
                }
                let protectTime = ContinuousClock.now - start
                start = ContinuousClock.now
                for i in 0..<packets { try receiver.unprotectRTP(&protected[i]) }
                let unprotectTime = ContinuousClock.now - start
                for (direction, time) in [("protect", protectTime), ("unprotect", unprotectTime)] {
                    let rate = Double(packets) / (time / .seconds(1))
                    results["\(profile) \(direction)", default: []].append(rate)
                    print("| \(profile) | \(direction) | \(Int(rate)) | \(String(format: "%.2f", rate * Double(size - 12) * 8 / 1e9)) |")
                }
            }
        }
        print("\nMedians (packets/s, \(size)-byte packets, \(rounds) runs):")
        for (name, rates) in results.sorted(by: { $0.key < $1.key }) {
            let sorted = rates.sorted()
            print("- \(name): \(Int(sorted[sorted.count / 2]))")
        }
    }
}
