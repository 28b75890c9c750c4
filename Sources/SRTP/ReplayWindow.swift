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
    /// Bit k of the window (word k / 64, bit k % 64) says whether index `highest - k` was accepted.
    private var seen: [UInt64]
    let size: Int

    /// `size` is rounded up to a multiple of 64.
    init(size: Int) {
        let words = max(1, (size + 63) / 64)
        self.size = words * 64
        seen = [UInt64](repeating: 0, count: words)
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
        return seen[k >> 6] & (1 << UInt64(k & 63)) != 0 ? .replayed : .fresh
    }

    /// Records the index `delta` away from ``highest`` as accepted (after its packet authenticated).
    mutating func add(_ delta: Int) {
        guard delta > 0 else {
            let k = -delta
            if k < size { seen[k >> 6] |= 1 << UInt64(k & 63) }
            return
        }
        highest &+= UInt64(delta)
        shift(by: delta)
        seen[0] |= 1
    }

    /// Moves every bit `n` places up (older), dropping those past the window.
    private mutating func shift(by n: Int) {
        let words = seen.count
        guard n < size else {
            for i in 0..<words { seen[i] = 0 }
            return
        }
        let wordShift = n >> 6, bitShift = UInt64(n & 63)
        var i = words - 1
        while i >= 0 {
            let from = i - wordShift
            var value: UInt64 = 0
            if from >= 0 {
                value = seen[from] << bitShift
                if bitShift != 0, from >= 1 { value |= seen[from - 1] >> (64 - bitShift) }
            }
            seen[i] = value
            i -= 1
        }
    }

    /// An SRTCP index's distance from ``highest``.
    func delta(ofIndex index: UInt64) -> Int { Int(truncatingIfNeeded: index &- highest) }
}
