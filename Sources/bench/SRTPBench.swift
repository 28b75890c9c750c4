import ArgumentParser
import DTLS
import Foundation
import LibSRTP
import SRTP

/// What the benchmark drives: LiveSwarm's SRTP (OpenSSL's ciphers) or Debian's libsrtp2.
protocol SRTPUnderTest {
    func protectRTP(_ packet: inout [UInt8]) throws(SRTPError)
    func unprotectRTP(_ packet: inout [UInt8]) throws(SRTPError)
}

extension SRTPContext: SRTPUnderTest {}
extension LibSRTPContext: SRTPUnderTest {}

/// SRTP protect and unprotect throughput on one core, for each protection profile and implementation: `rounds`
/// runs of `packets` RTP packets of `size` bytes, the same packets through LiveSwarm's SRTP (OpenSSL's EVP) and
/// Debian's libsrtp2 (built on NSS), alternating. Prints a Markdown table row per run and the medians.
struct SRTPThroughput: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "srtp")

    @Option(help: "RTP packet size in bytes (header included).") var size = 1200
    @Option(help: "Packets per run.") var packets = 200_000
    @Option(help: "Runs per profile, implementation and direction.") var rounds = 5
    @Option(help: "liveswarm, libsrtp, or both (alternating).") var library = "both"

    func run() throws {
        let libraries = library == "both" ? ["liveswarm", "libsrtp"] : [library]
        guard libraries.allSatisfy({ ["liveswarm", "libsrtp"].contains($0) }) else {
            throw ValidationError("--library is liveswarm, libsrtp or both")
        }
        var results: [String: [Double]] = [:]
        print("| profile | library | direction | packets/s | µs/packet | Gbit/s of payload |")
        print("|---|---|---|---|---|---|")
        for round in 0..<rounds {
            for profile in SRTPProfile.allCases {
                // The order alternates between rounds, so that neither always runs on a warmer cache.
                for library in round % 2 == 0 ? libraries : libraries.reversed() {
                    let (protect, unprotect) = try measure(profile: profile, library: library, round: round)
                    for (direction, time) in [("protect", protect), ("unprotect", unprotect)] {
                        let rate = Double(packets) / (time / .seconds(1))
                        results["\(profile) \(library) \(direction)", default: []].append(rate)
                        print("| \(profile) | \(library) | \(direction) | \(Int(rate)) | \(String(format: "%.2f", 1e6 / rate)) "
                              + "| \(String(format: "%.2f", rate * Double(size - 12) * 8 / 1e9)) |")
                    }
                }
            }
        }
        print("\nMedians (packets/s, \(size)-byte packets, \(rounds) runs):")
        for (name, rates) in results.sorted(by: { $0.key < $1.key }) {
            let median = rates.sorted()[rates.count / 2]
            print("- \(name): \(Int(median)) (\(String(format: "%.2f", 1e6 / median)) µs a packet)")
        }
    }

    /// Protects `packets` packets (a fresh sequence number each, as the receiver's replay window wants), then
    /// unprotects them all; the time of each.
    func measure(profile: SRTPProfile, library: String, round: Int) throws -> (Duration, Duration) {
        let key = (0..<(profile.keyLength + profile.saltLength)).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ round) }
        let sender: any SRTPUnderTest, receiver: any SRTPUnderTest
        if library == "libsrtp" {
            sender = try LibSRTPContext(profile: profile, masterKey: key, direction: .outbound)
            receiver = try LibSRTPContext(profile: profile, masterKey: key, direction: .inbound, replayWindow: 1024)
        } else {
            sender = try SRTPContext(profile: profile, masterKey: key, direction: .outbound)
            receiver = try SRTPContext(profile: profile, masterKey: key, direction: .inbound, replayWindow: 1024)
        }
        var protected: [[UInt8]] = []
        protected.reserveCapacity(packets)
        let template = [UInt8](repeating: 0x5A, count: size)
        var start = ContinuousClock.now
        for i in 0..<packets {
            var p = template
            // Room for the tag up front, as a datagram buffer has: the growth would otherwise copy the packet.
            p.reserveCapacity(size + LibSRTPContext.maximumTrailer)
            p[0] = 0x80; p[1] = 96
            p[2] = UInt8(truncatingIfNeeded: i >> 8); p[3] = UInt8(truncatingIfNeeded: i)
            p[8] = 0x12; p[9] = 0x34; p[10] = 0x56; p[11] = 0x78
            try sender.protectRTP(&p)
            protected.append(p)
        }
        let protectTime = ContinuousClock.now - start
        start = ContinuousClock.now
        for i in 0..<packets { try receiver.unprotectRTP(&protected[i]) }
        return (protectTime, ContinuousClock.now - start)
    }
}
