/// Which packet indices of one SSRC have been accepted: the highest, and a bitmap of the `size` up to it
/// (RFC 3711 3.3.2). For SRTP the indices are 48 bits (rollover counter and sequence number, estimated from the
/// 16-bit sequence number by ``estimate(_:)``); for SRTCP they are the 31-bit SRTCP index.
///
/// The estimation follows libsrtp's (`srtp_rdbx_estimate_index`) exactly, since Chromium and Firefox protect with
/// libsrtp and both ends must agree on every rollover counter: until the index passes 2^15 the rollover counter is
/// taken as 0 (a packet from before the first one is never guessed into rollover -1).
struct ReplayWindow: Equatable {
    /// The highest index accepted (0 before any).
    private(set) var highest: UInt64 = 0
    /// A ring of bits, one per index: index i's is bit i % 64 of word (i / 64) % words, and says whether i was
    /// accepted, for the `size` indices up to ``highest``; moving ``highest`` up clears the bits it passes over
    /// (those of indices a ring's length older), so no bitmap is shifted per packet.
    private var seen: [UInt64]
    let size: Int
    /// The ring's length in bits (a power of two, at least `size`) less one.
    private let mask: UInt64

    /// `size` is rounded up to a multiple of 64.
    init(size: Int) {
        let words = max(1, (size + 63) / 64)
        self.size = words * 64
        var ring = 1
        while ring < words { ring <<= 1 }
        seen = [UInt64](repeating: 0, count: ring)
        mask = UInt64(ring * 64 - 1)
    }

    enum Verdict: Equatable {
        case fresh
        /// Accepted before.
        case replayed
        /// Older than the window: whether it was seen is no longer known.
        case tooOld
    }

    static let median = 1 << 15

    /// The 48-bit index of an SRTP packet with sequence number `seq`, and its distance from ``highest``
    /// (RFC 3711 3.3.1 and Appendix A).
    func estimate(_ seq: UInt16) -> (index: UInt64, delta: Int) {
        let s = Int(seq), localSeq = Int(UInt16(truncatingIfNeeded: highest))
        guard highest > UInt64(Self.median) else { return (UInt64(seq), s - localSeq) }
        let localROC = UInt32(truncatingIfNeeded: highest >> 16)
        var roc = localROC, delta = s - localSeq
        if localSeq < Self.median {
            if s - localSeq > Self.median { roc = localROC &- 1; delta = s - localSeq - 65536 }
        } else if localSeq - Self.median > s {
            roc = localROC &+ 1; delta = s - localSeq + 65536
        }
        return (UInt64(roc) << 16 | UInt64(seq), delta)
    }

    /// Whether the index `delta` away from ``highest`` may be accepted.
    func check(_ delta: Int) -> Verdict {
        if delta > 0 { return .fresh }
        let k = -delta
        guard k < size else { return .tooOld }
        return isSet(highest &- UInt64(k)) ? .replayed : .fresh
    }

    /// Records the index `delta` away from ``highest`` as accepted (after its packet authenticated).
    mutating func add(_ delta: Int) {
        guard delta > 0 else {
            let k = -delta
            if k < size { set(highest &- UInt64(k)) }
            return
        }
        clear(after: highest, count: delta)
        highest &+= UInt64(delta)
        set(highest)
    }

    private func isSet(_ index: UInt64) -> Bool {
        let bit = index & mask
        return seen[Int(bit >> 6)] & (1 << (bit & 63)) != 0
    }

    private mutating func set(_ index: UInt64) {
        let bit = index & mask
        seen[Int(bit >> 6)] |= 1 << (bit & 63)
    }

    /// Clears the bits of the `count` indices after `index` (all of them when `count` is the ring's length or more).
    private mutating func clear(after index: UInt64, count: Int) {
        guard UInt64(count) <= mask else {
            for i in seen.indices { seen[i] = 0 }
            return
        }
        var bit = (index &+ 1) & mask
        var left = UInt64(count)
        while left > 0 {
            let offset = bit & 63, n = min(64 - offset, left)
            let bits: UInt64 = n == 64 ? ~0 : ((1 << n) - 1) << offset
            seen[Int(bit >> 6)] &= ~bits
            left -= n
            bit = (bit + n) & mask
        }
    }

    /// An SRTCP index's distance from ``highest``.
    func delta(ofIndex index: UInt64) -> Int { Int(truncatingIfNeeded: index &- highest) }
}
