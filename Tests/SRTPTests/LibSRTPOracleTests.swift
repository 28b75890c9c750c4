import DTLS
import LibSRTP
@testable import SRTP
import Testing
import TestSupport

/// ``SRTPContext`` (OpenSSL's ciphers) held to Debian's libsrtp2 in both directions, byte for byte: what one
/// protects the other unprotects, and both protect every packet to the same bytes. Packets have random sizes, CSRCs
/// and header extensions; sequence numbers cross a rollover, arrive out of order, and are retransmitted.
@Suite struct LibSRTPOracleTests {
    /// An RTP packet with `csrcs` CSRCs, a one-byte-header extension of `extensionWords` words if any, and
    /// `payload` random bytes.
    static func rtp(seq: UInt16, ssrc: UInt32, csrcs: Int, extensionWords: Int?, payload: Int,
                    rng: inout SplitMix64) -> [UInt8] {
        var p: [UInt8] = [0x80 | UInt8(csrcs) | (extensionWords == nil ? 0 : 0x10), 96,
                          UInt8(seq >> 8), UInt8(seq & 0xFF), 0x12, 0x34, 0x56, 0x78]
        p += withUnsafeBytes(of: ssrc.bigEndian, Array.init)
        for _ in 0..<csrcs { p += [1, 2, 3, 4] }
        if let words = extensionWords {
            p += [0xBE, 0xDE, 0, UInt8(words)]
            p += (0..<(words * 4)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        }
        p += (0..<payload).map { _ in UInt8.random(in: 0...255, using: &rng) }
        return p
    }

    static func key(_ profile: SRTPProfile, _ rng: inout SplitMix64) -> [UInt8] {
        (0..<(profile.keyLength + profile.saltLength)).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }

    /// The order packets are sent in: from a start near the rollover, mostly in order, some swapped, some resent.
    static func schedule(start: UInt16, count: Int, rng: inout SplitMix64) -> [UInt16] {
        var seqs = (0..<count).map { start &+ UInt16($0) }
        for i in stride(from: 1, to: count, by: 7) where Bool.random(using: &rng) { seqs.swapAt(i - 1, i) }
        return seqs
    }

    @Test(arguments: SRTPProfile.allCases)
    func bothDirectionsAgreeAcrossARollover(profile: SRTPProfile) throws {
        var rng = SplitMix64(state: UInt64(profile.rawValue) * 1000 + 1)
        for round in 0..<4 {
            let k = Self.key(profile, &rng)
            let ours = try SRTPContext(profile: profile, masterKey: k, direction: .outbound)
            let theirs = try LibSRTPContext(profile: profile, masterKey: k, direction: .outbound)
            let ourReceiver = try SRTPContext(profile: profile, masterKey: k, direction: .inbound)
            // The fan-out's way: header and payload apart, encrypted out of place into a datagram.
            let outOfPlace = try SRTPContext(profile: profile, masterKey: k, direction: .outbound)
            let theirReceiver = try LibSRTPContext(profile: profile, masterKey: k, direction: .inbound)
            // Two SSRCs, the second starting in the upper half so that its first packets sit before a rollover.
            let starts: [UInt16] = [UInt16.random(in: 0...0x7FFF, using: &rng), UInt16(65536 - 300 + round * 10)]
            for (n, start) in starts.enumerated() {
                let ssrc = UInt32(0xA000_0000) + UInt32(n)
                var sent: [UInt16: [UInt8]] = [:]
                for seq in Self.schedule(start: start, count: 700, rng: &rng) {
                    let extensionWords: Int? = Bool.random(using: &rng) ? Int.random(in: 0...3, using: &rng) : nil
                    let plain = Self.rtp(seq: seq, ssrc: ssrc, csrcs: Int.random(in: 0...2, using: &rng),
                                         extensionWords: extensionWords, payload: Int.random(in: 0...1200, using: &rng),
                                         rng: &rng)
                    var a = plain, b = plain
                    try ours.protectRTP(&a)
                    try theirs.protectRTP(&b)
                    #expect(a == b, "seq \(seq): the same bytes from both")
                    let header = 12 + 4 * Int(plain[0] & 0x0F) + (extensionWords.map { 4 + 4 * $0 } ?? 0)
                    var datagram = [UInt8](repeating: 0xEE, count: plain.count + outOfPlace.tagLength)
                    let n = try plain.withUnsafeBytes { p in
                        try datagram.withUnsafeMutableBytes { o throws(SRTPError) in
                            try outOfPlace.protectRTP(header: UnsafeRawBufferPointer(rebasing: p[..<header]),
                                                      payload: UnsafeRawBufferPointer(rebasing: p[header...]), into: o)
                        }
                    }
                    #expect(n == a.count && datagram == a, "seq \(seq): out of place")
                    var c = a, d = b
                    try theirReceiver.unprotectRTP(&c)
                    try ourReceiver.unprotectRTP(&d)
                    #expect(c == plain && d == plain)
                    sent[seq] = plain
                }
                // A NACK's retransmission of a packet already sent: protected to the same bytes again, refused by a
                // receiver that has it (replay).
                let old = start &+ 600
                var a = sent[old]!, b = sent[old]!
                try ours.protectRTP(&a)
                try theirs.protectRTP(&b)
                #expect(a == b)
                var again = a
                #expect(throws: SRTPError.replayed) { try ourReceiver.unprotectRTP(&again) }
            }
            for i in 0..<50 {
                let plain = [UInt8](hex: "81c9000c") + withUnsafeBytes(of: UInt32(0xB000_0000 + i % 2).bigEndian, Array.init)
                    + (0..<(4 * Int.random(in: 0...20, using: &rng))).map { _ in UInt8.random(in: 0...255, using: &rng) }
                var a = plain, b = plain
                try ours.protectRTCP(&a)
                try theirs.protectRTCP(&b)
                #expect(a == b, "SRTCP \(i)")
                var c = a, d = b
                try theirReceiver.unprotectRTCP(&c)
                try ourReceiver.unprotectRTCP(&d)
                #expect(c == plain && d == plain)
                var again = a
                #expect(throws: SRTPError.replayed) { try ourReceiver.unprotectRTCP(&again) }
            }
        }
    }

    /// SRTCP sent authenticated only (E = 0) is taken as libsrtp takes it: with AES-GCM authenticated whole and
    /// not decrypted (its body is in clear on the wire and comes out as it went in); with AES-CM refused by both
    /// receivers (libsrtp: an E bit that differs from the session's policy "can't be checked").
    @Test(arguments: SRTPProfile.allCases)
    func unencryptedSRTCPIsTakenAsLibsrtpTakesIt(profile: SRTPProfile) throws {
        var rng = SplitMix64(state: 77)
        let k = Self.key(profile, &rng)
        let clear = try LibSRTPContext(profile: profile, masterKey: k, direction: .outbound, rtcpEncrypted: false)
        let ours = try SRTPContext(profile: profile, masterKey: k, direction: .inbound)
        let theirs = try LibSRTPContext(profile: profile, masterKey: k, direction: .inbound)
        // A receiver report with one block.
        let plain = [UInt8](hex: "81c90007 12345678 abcdef01 05000010 00001234 00000010 00000000 00000000")
        var p = plain
        try clear.protectRTCP(&p)
        #expect(p[..<plain.count] == plain[...], "sent in clear")
        let word = profile == .aeadAes128Gcm ? p.count - 4 : plain.count
        #expect(p[word] & 0x80 == 0, "E bit 0")
        guard profile == .aeadAes128Gcm else {
            var a = p, b = p
            #expect(throws: SRTPError.malformed) { try ours.unprotectRTCP(&a) }
            #expect((try? theirs.unprotectRTCP(&b)) == nil)
            return
        }
        var tampered = p
        tampered[20] ^= 0x40
        #expect(throws: SRTPError.authenticationFailed) { try ours.unprotectRTCP(&tampered) }
        var b = p
        try theirs.unprotectRTCP(&b)
        try ours.unprotectRTCP(&p)
        #expect(p == plain && b == plain)
    }

    /// New packets (the fan-out's out-of-place protection) never reuse an index: a publisher's duplicate is refused,
    /// where the in-place path (NACK retransmissions of the same bytes) may repeat one.
    @Test(arguments: SRTPProfile.allCases)
    func newPacketsNeverReuseAnIndex(profile: SRTPProfile) throws {
        var rng = SplitMix64(state: 5)
        let context = try SRTPContext(profile: profile, masterKey: Self.key(profile, &rng), direction: .outbound)
        let first = Self.rtp(seq: 9, ssrc: 1, csrcs: 0, extensionWords: nil, payload: 40, rng: &rng)
        let other = Self.rtp(seq: 9, ssrc: 1, csrcs: 0, extensionWords: nil, payload: 40, rng: &rng)
        func outOfPlace(_ plain: [UInt8]) throws -> Int {
            var out = [UInt8](repeating: 0, count: plain.count + context.tagLength)
            return try plain.withUnsafeBytes { p in
                try out.withUnsafeMutableBytes { o in
                    try context.protectRTP(header: UnsafeRawBufferPointer(rebasing: p[..<12]),
                                           payload: UnsafeRawBufferPointer(rebasing: p[12...]), into: o)
                }
            }
        }
        _ = try outOfPlace(first)
        #expect(throws: SRTPError.replayed) { try outOfPlace(other) }
        var again = first
        try context.protectRTP(&again)
    }

    /// Our own SSRCs are not limited (a long-lived subscriber sees many come and go); the peer's are, past 1024,
    /// for new ones only.
    @Test func onlyThePeersSSRCsAreLimited() throws {
        var rng = SplitMix64(state: 6)
        let k = Self.key(.aeadAes128Gcm, &rng)
        let sender = try SRTPContext(profile: .aeadAes128Gcm, masterKey: k, direction: .outbound)
        let receiver = try SRTPContext(profile: .aeadAes128Gcm, masterKey: k, direction: .inbound)
        var packets: [[UInt8]] = []
        for ssrc in UInt32(1)...UInt32(SRTPContext.maximumStreams + 100) {
            var p = Self.rtp(seq: 1, ssrc: ssrc, csrcs: 0, extensionWords: nil, payload: 8, rng: &rng)
            try sender.protectRTP(&p)
            packets.append(p)
        }
        for (i, p) in packets.enumerated() {
            var q = p
            if i < SRTPContext.maximumStreams {
                try receiver.unprotectRTP(&q)
            } else {
                #expect(throws: SRTPError.tooManyStreams) { try receiver.unprotectRTP(&q) }
            }
        }
        var next = Self.rtp(seq: 2, ssrc: 1, csrcs: 0, extensionWords: nil, payload: 8, rng: &rng)
        try sender.protectRTP(&next)
        try receiver.unprotectRTP(&next)
    }

    /// What one end refuses the other refuses too: a flipped bit anywhere, another key, a replay, a packet older
    /// than the window.
    @Test(arguments: SRTPProfile.allCases)
    func refusalsMatch(profile: SRTPProfile) throws {
        var rng = SplitMix64(state: 91)
        let k = Self.key(profile, &rng)
        let sender = try LibSRTPContext(profile: profile, masterKey: k, direction: .outbound)
        let ours = try SRTPContext(profile: profile, masterKey: k, direction: .inbound)
        let theirs = try LibSRTPContext(profile: profile, masterKey: k, direction: .inbound)
        var packets: [[UInt8]] = []
        for seq in UInt16(1000)..<2100 {
            var p = Self.rtp(seq: seq, ssrc: 5, csrcs: 0, extensionWords: nil, payload: 60, rng: &rng)
            try sender.protectRTP(&p)
            packets.append(p)
        }
        for bit in stride(from: 0, to: packets[0].count * 8, by: 5) {
            var a = packets[0], b = packets[0]
            a[bit / 8] ^= 1 << UInt8(bit % 8)
            b[bit / 8] ^= 1 << UInt8(bit % 8)
            let oursFailed = (try? ours.unprotectRTP(&a)) == nil, theirsFailed = (try? theirs.unprotectRTP(&b)) == nil
            #expect(oursFailed && theirsFailed, "bit \(bit) flipped")
        }
        // The newest, then the first (1099 behind: outside the 1024 window), then one inside the window twice.
        for p in [packets[1099], packets[0], packets[500], packets[500]] {
            var a = p, b = p
            let oursResult = Result { () throws(SRTPError) in try ours.unprotectRTP(&a) }
            let theirsResult = Result { () throws(SRTPError) in try theirs.unprotectRTP(&b) }
            #expect(oursResult.error == theirsResult.error)
        }
    }
}

extension Result {
    var error: Failure? { if case .failure(let e) = self { e } else { nil } }
}
