import DTLS
import FuzzSupport
import LibSRTP
import SRTP

/// LiveSwarm's SRTP (OpenSSL's ciphers) against Debian's libsrtp2, differentially: the same script of packets goes
/// through a pair of senders (ours, libsrtp's) and a pair of receivers, and every step must come out the same: both
/// protect a packet to the same bytes or both refuse it, both receivers take a packet to the same plaintext or both
/// refuse it. Packets are lost and delivered late, delivered twice, tampered with, or made of raw bytes.
///
/// Input: byte 0 picks the profile; then steps, each an opcode byte and its operands:
///   0 send RTP:  seq(2) ssrc(1) flags(1: CSRC count, extension, lost) extension words(1) payload length(1)
///   1 send RTCP: ssrc(1) words(1) lost(1)
///   2 deliver a stored protected packet again: which(1) flip(2: 0 none, else the bit to flip + 1)
///   3 raw bytes as SRTP / 4 as SRTCP to the receivers: length(1) bytes
///   5 raw bytes as RTP to the senders: length(1) bytes
///   6 send RTP as the fan-out does (ours out of place, header and payload apart), as op 0: ours refuses an index
///     already sent where libsrtp repeats it (never so for new packets: one GCM IV, two plaintexts)
///   7 send SRTCP authenticated only (E = 0, from a libsrtp sender): ssrc(1) words(1)
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    check(nssKeptLoaded != nil, "libsrtp context")
    var input = Array(UnsafeBufferPointer(start: data, count: size))[...]
    guard let first = input.popFirst() else { return 0 }
    let profile: SRTPProfile = first & 1 == 0 ? .aeadAes128Gcm : .aes128CmHmacSha1_80
    let key = (0..<(profile.keyLength + profile.saltLength)).map { UInt8(truncatingIfNeeded: $0 &* 29 &+ 3) }
    guard let ours = try? SRTPContext(profile: profile, masterKey: key, direction: .outbound),
          let theirs = try? LibSRTPContext(profile: profile, masterKey: key, direction: .outbound),
          let ourReceiver = try? SRTPContext(profile: profile, masterKey: key, direction: .inbound),
          let theirReceiver = try? LibSRTPContext(profile: profile, masterKey: key, direction: .inbound),
          let clearRTCP = try? LibSRTPContext(profile: profile, masterKey: key, direction: .outbound, rtcpEncrypted: false)
    else { fatalError("contexts") }
    var stored: [(bytes: [UInt8], rtcp: Bool)] = []
    /// Sequence numbers sent per SSRC: an index ours refuses as already sent must be one of them.
    var sentSequences: [UInt32: Set<UInt16>] = [:]
    func sequenceKey(_ plain: [UInt8]) -> (ssrc: UInt32, seq: UInt16) {
        (UInt32(plain[8]) << 24 | UInt32(plain[9]) << 16 | UInt32(plain[10]) << 8 | UInt32(plain[11]),
         UInt16(plain[2]) << 8 | UInt16(plain[3]))
    }

    func byte() -> Int? { input.popFirst().map(Int.init) }
    func bytes(_ n: Int) -> [UInt8] {
        let taken = Array(input.prefix(n))
        input = input.dropFirst(taken.count)
        return taken
    }
    /// Protects with both senders; nil if both refuse. False: ours refused for its stream limit (stop there).
    func protect(_ plain: [UInt8], rtcp: Bool) -> [UInt8]?? {
        var a = plain, b = plain
        let oursResult = Result { () throws(SRTPError) in rtcp ? try ours.protectRTCP(&a) : try ours.protectRTP(&a) }
        let theirsResult = Result { () throws(SRTPError) in rtcp ? try theirs.protectRTCP(&b) : try theirs.protectRTP(&b) }
        if case .failure(.tooManyStreams) = oursResult { return .none }
        switch (oursResult, theirsResult) {
        case (.success, .success):
            check(a == b, "protected differently: \(plain) -> ours \(a), libsrtp \(b)")
            if !rtcp {
                let (ssrc, seq) = sequenceKey(plain)
                sentSequences[ssrc, default: []].insert(seq)
            }
            return .some(a)
        case (.failure, .failure): return .some(nil)
        default: fatalError("protect: ours \(oursResult), libsrtp \(theirsResult) for \(plain)")
        }
    }
    /// Unprotects with both receivers; they must agree. False: ours refused for its stream limit.
    func deliver(_ packet: [UInt8], rtcp: Bool) -> Bool {
        var a = packet, b = packet
        let oursResult = Result { () throws(SRTPError) in rtcp ? try ourReceiver.unprotectRTCP(&a) : try ourReceiver.unprotectRTP(&a) }
        let theirsResult = Result { () throws(SRTPError) in
            rtcp ? try theirReceiver.unprotectRTCP(&b) : try theirReceiver.unprotectRTP(&b)
        }
        if case .failure(.tooManyStreams) = oursResult { return false }
        switch (oursResult, theirsResult) {
        case (.success, .success): check(a == b, "unprotected differently: \(packet) -> ours \(a), libsrtp \(b)")
        case (.failure, .failure): break
        default: fatalError("unprotect: ours \(oursResult), libsrtp \(theirsResult) for \(packet)")
        }
        return true
    }

    /// Protects out of place with ours (header and payload apart, as the fan-out does) and in place with libsrtp.
    func protectOutOfPlace(_ plain: [UInt8], header: Int) -> [UInt8]?? {
        var out = [UInt8](repeating: 0, count: plain.count + ours.tagLength)
        let oursResult = Result { () throws -> Int in
            try plain.withUnsafeBytes { p in
                try out.withUnsafeMutableBytes { o in
                    try ours.protectRTP(header: UnsafeRawBufferPointer(rebasing: p[..<header]),
                                        payload: UnsafeRawBufferPointer(rebasing: p[header...]), into: o)
                }
            }
        }
        var b = plain
        let theirsResult = Result { () throws(SRTPError) in try theirs.protectRTP(&b) }
        let (ssrc, seq) = sequenceKey(plain)
        switch (oursResult, theirsResult) {
        case (.success(let n), .success):
            check(Array(out[..<n]) == b, "protected out of place differently: \(plain) -> ours \(out[..<n]), libsrtp \(b)")
            sentSequences[ssrc, default: []].insert(seq)
            return .some(b)
        case (.failure(SRTPError.replayed), .success):
            // libsrtp repeated an index; ours must have sent it.
            check(sentSequences[ssrc]?.contains(seq) == true, "refused as a repeat, never sent: \(plain)")
            return .some(nil)
        case (.failure, .failure): return .some(nil)
        default: fatalError("protect out of place: ours \(oursResult), libsrtp \(theirsResult) for \(plain)")
        }
    }

    while let op = byte() {
        switch op % 8 {
        case 0, 6:
            guard let s0 = byte(), let s1 = byte(), let ssrc = byte(), let flags = byte(), let words = byte(),
                  let length = byte() else { return 0 }
            let csrcs = flags & 3, hasExtension = flags & 4 != 0, lost = flags & 8 != 0
            var p: [UInt8] = [0x80 | UInt8(csrcs) | (hasExtension ? 0x10 : 0), 96, UInt8(s0), UInt8(s1), 0, 0, 0, 1,
                              0, 0, 0, UInt8(ssrc & 7)]
            for _ in 0..<csrcs { p += [9, 9, 9, 9] }
            if hasExtension { p += [0xBE, 0xDE, 0, UInt8(words & 3)] + [UInt8](repeating: 0x11, count: 4 * (words & 3)) }
            let header = p.count
            p += (0..<length).map { UInt8(truncatingIfNeeded: $0) }
            let result: [UInt8]??
            if op % 8 == 6 {
                result = protectOutOfPlace(p, header: header)
            } else {
                result = protect(p, rtcp: false)
            }
            guard let result else { return 0 }
            guard let packet = result else { continue }
            stored.append((packet, false))
            if !lost, !deliver(packet, rtcp: false) { return 0 }
        case 7:
            guard let ssrc = byte(), let words = byte() else { return 0 }
            var p: [UInt8] = [0x80, 201, 0, UInt8(words & 15), 0, 0, 0, UInt8(ssrc & 7)]
                + [UInt8](repeating: 0x33, count: 4 * (words & 15))
            guard (try? clearRTCP.protectRTCP(&p)) != nil else { continue }
            stored.append((p, true))
            if !deliver(p, rtcp: true) { return 0 }
        case 1:
            guard let ssrc = byte(), let words = byte(), let lost = byte() else { return 0 }
            let p: [UInt8] = [0x80, 201, 0, UInt8(words & 15), 0, 0, 0, UInt8(ssrc & 7)]
                + [UInt8](repeating: 0x22, count: 4 * (words & 15))
            guard let result = protect(p, rtcp: true) else { return 0 }
            guard let packet = result else { continue }
            stored.append((packet, true))
            if lost & 1 == 0, !deliver(packet, rtcp: true) { return 0 }
        case 2:
            guard let which = byte(), let f0 = byte(), let f1 = byte(), !stored.isEmpty else { continue }
            var (packet, rtcp) = stored[which % stored.count]
            let flip = f0 << 8 | f1
            if flip > 0 { packet[(flip - 1) / 8 % packet.count] ^= 1 << UInt8((flip - 1) % 8) }
            if !deliver(packet, rtcp: rtcp) { return 0 }
        case 3, 4:
            guard let length = byte() else { return 0 }
            if !deliver(bytes(length), rtcp: op % 8 == 4) { return 0 }
        default:
            guard let length = byte() else { return 0 }
            guard let result = protect(bytes(length), rtcp: false) else { return 0 }
            if let packet = result { stored.append((packet, false)) }
        }
    }
    return 0
}

/// Debian's libsrtp2 runs on NSS and opens an NSS context for each cipher it allocates: when the last one closes, NSS
/// unloads its crypto module, and the next input loads it again (dlopen, symbol lookup: 45 inputs a second instead of
/// thousands). One context kept for the process keeps NSS loaded.
nonisolated(unsafe) let nssKeptLoaded = try? LibSRTPContext(profile: .aeadAes128Gcm, masterKey: [UInt8](repeating: 1, count: 28),
                                                            direction: .inbound)
