import DTLS

/// SRTP and SRTCP (RFC 3711; RFC 7714 for AES-GCM) for one direction of one transport, on OpenSSL's ciphers: AES-CM
/// with HMAC-SHA1-80, or AEAD AES-128-GCM. An outbound context protects everything we send on the transport,
/// whatever the SSRC; an inbound one unprotects everything the peer sends, with a replay window per SSRC. The
/// in-place ``protectRTP(_:)`` allows repeated transmission, so a packet retransmitted for a NACK can be protected
/// again with the same index; ``protectRTP(header:payload:into:)``, for new packets, refuses an index already sent.
///
/// Its output is byte for byte libsrtp's (the tests hold it to Debian's libsrtp2 in both directions): the same
/// rollover counter estimation, SRTCP indices from 1, the E bit always set on what it sends.
///
/// Not thread-safe: one event loop owns it.
public final class SRTPContext {
    public enum Direction: Sendable { case inbound, outbound }

    /// The most a protected packet grows: SRTCP with AES-GCM adds its 16-byte tag and the 4-byte E bit and index.
    public static let maximumTrailer = 20
    /// The peer's SSRCs an inbound context keeps state for. A peer past it is misbehaving (a browser sends a
    /// handful); its new SSRCs are then refused, never the ones already flowing. Our own (outbound) are not limited.
    public static let maximumStreams = 1024

    public let profile: SRTPProfile
    public let direction: Direction
    let rtp: Transform
    let rtcp: Transform
    let replayWindow: Int
    /// Per SSRC: the SRTP packets accepted (inbound) or sent (outbound).
    var rtpStreams: [UInt32: ReplayWindow] = [:]
    /// Per SSRC, inbound: the SRTCP indices accepted.
    var rtcpReceived: [UInt32: ReplayWindow] = [:]
    /// Per SSRC, outbound: the last SRTCP index sent.
    var rtcpSent: [UInt32: UInt32] = [:]

    /// Outbound: every SSRC something was protected for, RTP or RTCP (the SSRCs an RTCP BYE names), in order.
    public var sentSSRCs: [UInt32] { Set(rtpStreams.keys).union(rtcpSent.keys).sorted() }

    /// `masterKey` is the master key followed by the master salt (``SRTPKeys/local`` or ``SRTPKeys/remote``).
    /// `replayWindow`: how far back (in packets) an SSRC's SRTP packets may arrive late and still be taken; 1024
    /// covers a NACK's retransmission at a few Mbit/s, where libsrtp's default of 128 did not. SRTCP's is 128.
    public init(profile: SRTPProfile, masterKey: [UInt8], direction: Direction, replayWindow: Int = 1024) throws(SRTPError) {
        let length = profile.keyLength + profile.saltLength
        guard masterKey.count == length else { throw .badKeyLength(expected: length, got: masterKey.count) }
        self.profile = profile
        self.direction = direction
        self.replayWindow = replayWindow
        rtp = try Transform(profile: profile, keys: SessionKeys(profile: profile, masterKey: masterKey, rtcp: false))
        rtcp = try Transform(profile: profile, keys: SessionKeys(profile: profile, masterKey: masterKey, rtcp: true))
    }

    /// Encrypts and authenticates an RTP packet in place (it grows by the tag).
    public func protectRTP(_ packet: inout [UInt8]) throws(SRTPError) {
        try run(&packet, grow: rtp.tagLength) { p, n throws(SRTPError) in try protectRTP(p, length: n) }
    }

    /// Checks and decrypts an SRTP packet in place (it shrinks by the tag).
    public func unprotectRTP(_ packet: inout [UInt8]) throws(SRTPError) {
        try run(&packet, grow: 0) { p, n throws(SRTPError) in try unprotectRTP(p, length: n) }
    }

    public func protectRTCP(_ packet: inout [UInt8]) throws(SRTPError) {
        try run(&packet, grow: rtcp.tagLength + 4) { p, n throws(SRTPError) in try protectRTCP(p, length: n) }
    }

    public func unprotectRTCP(_ packet: inout [UInt8]) throws(SRTPError) {
        try run(&packet, grow: 0) { p, n throws(SRTPError) in try unprotectRTCP(p, length: n) }
    }

    func run(_ packet: inout [UInt8], grow: Int,
             _ body: (UnsafeMutablePointer<UInt8>, Int) throws(SRTPError) -> Int) throws(SRTPError) {
        let length = packet.count
        guard length <= 65535 else { throw .malformed }
        if grow > 0 { packet.append(contentsOf: repeatElement(0, count: grow)) }
        let result = packet.withUnsafeMutableBufferPointer { b in
            Result { () throws(SRTPError) -> Int in try body(b.baseAddress!, length) }
        }
        switch result {
        case .success(let n): packet.removeLast(packet.count - n)
        case .failure(let error):
            if grow > 0 { packet.removeLast(grow) }
            throw error
        }
    }

    // MARK: - SRTP (RFC 3711 3.1, 4.1.1, 4.2.1; RFC 7714 8)

    /// Protects the RTP packet in `p[0..<length]`, writing its tag after it (room for ``Transform/tagLength`` bytes
    /// must follow). Returns the protected length.
    public func protectRTP(_ p: UnsafeMutablePointer<UInt8>, length: Int) throws(SRTPError) -> Int {
        guard let header = Self.rtpHeaderLength(p, length) else { throw .malformed }
        return try protectRTP(p, header: header, length: length, payload: p + header, allowRepeat: true)
    }

    /// Protects the RTP packet made of `header` (a whole RTP header: CSRCs and extension included) and `payload`
    /// into `out`, leaving both as they are: the payload is encrypted on its way into `out`, so a packet fanned out
    /// to many viewers is read from the publisher's copy and written once per viewer, with no other copy. `out`
    /// needs room for both and ``tagLength``. An index already sent is refused (``SRTPError/replayed``): these are new
    /// packets, and a publisher's duplicate must not be encrypted twice under one IV. Returns the protected length.
    public func protectRTP(header: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer,
                           into out: UnsafeMutableRawBufferPointer) throws(SRTPError) -> Int {
        let length = header.count + payload.count
        guard length <= 65535, out.count >= length + rtp.tagLength, let o = out.baseAddress, let h = header.baseAddress
        else { throw .malformed }
        o.copyMemory(from: h, byteCount: header.count)
        let p = o.assumingMemoryBound(to: UInt8.self)
        guard Self.rtpHeaderLength(p, header.count) == header.count else { throw .malformed }
        let source = payload.baseAddress.map { $0.assumingMemoryBound(to: UInt8.self) } ?? UnsafePointer(p + header.count)
        return try protectRTP(p, header: header.count, length: length, payload: source, allowRepeat: false)
    }

    /// The bytes an RTP packet grows by when protected (the tag).
    public var tagLength: Int { rtp.tagLength }

    /// `allowRepeat`: an index already sent may be protected again (a NACK's retransmission of the same bytes).
    /// Never for new packets: AES-GCM under one key and IV twice, with different bytes, gives its authentication key
    /// away to whoever sees both.
    func protectRTP(_ p: UnsafeMutablePointer<UInt8>, header: Int, length: Int, payload: UnsafePointer<UInt8>,
                    allowRepeat: Bool) throws(SRTPError) -> Int {
        let ssrc = Self.uint32(p + 8), seq = UInt16(p[2]) << 8 | UInt16(p[3])
        // Our own SSRCs: no limit (a stream's state is kept for the session, so that an SSRC never restarts its
        // rollover counter under the same key). The windows are updated in place: a copy would copy the bitmap.
        let index = try Self.send(seq, allowRepeat: allowRepeat, in: &rtpStreams[ssrc, default: ReplayWindow(size: replayWindow)])
        guard rtp.sealRTP(p, header: header, length: length, payload: payload, ssrc: ssrc, index: index) else {
            throw .cipherFailed
        }
        return length + rtp.tagLength
    }

    /// The index of an RTP packet about to be protected with sequence number `seq`, recorded in its SSRC's `window`
    /// (one dictionary access: the window is changed in place).
    private static func send(_ seq: UInt16, allowRepeat: Bool, in window: inout ReplayWindow) throws(SRTPError) -> UInt64 {
        let (index, delta) = window.estimate(seq)
        switch window.check(delta) {
        case .fresh: window.add(delta)
        case .replayed: guard allowRepeat else { throw .replayed }
        case .tooOld: throw .replayed
        }
        return index
    }

    /// Checks and decrypts the SRTP packet in `p[0..<length]` in place. Returns the RTP packet's length. A packet
    /// that fails leaves the state as it was (with AES-GCM, whose tag is checked after decrypting, its payload is
    /// then zeros).
    public func unprotectRTP(_ p: UnsafeMutablePointer<UInt8>, length: Int) throws(SRTPError) -> Int {
        guard length <= 65535, let header = Self.rtpHeaderLength(p, length), header + rtp.tagLength <= length else {
            throw .malformed
        }
        let ssrc = Self.uint32(p + 8), seq = UInt16(p[2]) << 8 | UInt16(p[3])
        guard rtpStreams[ssrc] != nil || rtpStreams.count < Self.maximumStreams else { throw .tooManyStreams }
        // A new SSRC's window is kept only once a packet of it authenticated.
        let window = rtpStreams[ssrc] ?? ReplayWindow(size: replayWindow)
        let (index, delta) = window.estimate(seq)
        guard window.check(delta) == .fresh else { throw .replayed }
        guard rtp.openRTP(p, header: header, length: length, ssrc: ssrc, index: index) else { throw .authenticationFailed }
        if rtpStreams[ssrc] == nil { rtpStreams[ssrc] = window }
        rtpStreams[ssrc]!.add(delta)
        return length - rtp.tagLength
    }

    // MARK: - SRTCP (RFC 3711 3.4; RFC 7714 9)

    /// Protects the RTCP packet (compound or not) in `p[0..<length]`, writing the E bit and index and the tag after
    /// it (room for ``Transform/tagLength`` + 4 bytes must follow). Returns the protected length.
    public func protectRTCP(_ p: UnsafeMutablePointer<UInt8>, length: Int) throws(SRTPError) -> Int {
        guard length >= 8, length <= 65535 else { throw .malformed }
        let ssrc = Self.uint32(p + 4)
        let index = (rtcpSent[ssrc] ?? 0) + 1
        guard index <= 0x7FFF_FFFF else { throw .indexExhausted }
        rtcpSent[ssrc] = index
        guard rtcp.sealRTCP(p, length: length, ssrc: ssrc, index: index) else { throw .cipherFailed }
        return length + rtcp.tagLength + 4
    }

    /// Checks and decrypts the SRTCP packet in `p[0..<length]` in place. Returns the RTCP packet's length.
    public func unprotectRTCP(_ p: UnsafeMutablePointer<UInt8>, length: Int) throws(SRTPError) -> Int {
        let trailer = rtcp.tagLength + 4
        guard length >= 8 + trailer, length <= 65535 else { throw .malformed }
        let ssrc = Self.uint32(p + 4)
        // AES-CM puts the E bit and index before the tag, AES-GCM after it.
        let word = Self.uint32(p + (rtcp.isGCM ? length - 4 : length - trailer))
        // SRTCP sent in clear (E bit 0, authenticated only), as libsrtp (Chromium's and Firefox's receiver) takes
        // it: with AES-GCM the whole packet is then authenticated (RFC 7714 9.2); with AES-CM it is refused, as
        // libsrtp refuses an E bit that differs from the session's policy (ours always encrypts).
        let encrypted = word & 0x8000_0000 != 0, index = UInt64(word & 0x7FFF_FFFF)
        guard encrypted || rtcp.isGCM else { throw .malformed }
        guard rtcpReceived[ssrc] != nil || rtcpReceived.count < Self.maximumStreams else { throw .tooManyStreams }
        let window = rtcpReceived[ssrc] ?? ReplayWindow(size: 128)
        let delta = window.delta(ofIndex: index)
        guard window.check(delta) == .fresh else { throw .replayed }
        guard rtcp.openRTCP(p, length: length, ssrc: ssrc, word: word, encrypted: encrypted) else {
            throw .authenticationFailed
        }
        if rtcpReceived[ssrc] == nil { rtcpReceived[ssrc] = window }
        rtcpReceived[ssrc]!.add(delta)
        return length - trailer
    }

    // MARK: - Bytes

    /// 12 bytes, the CSRCs, and the header extension if any (RFC 3550 5.1, 5.3.1); nil if they overrun `length`.
    static func rtpHeaderLength(_ p: UnsafePointer<UInt8>, _ length: Int) -> Int? {
        guard length >= 12 else { return nil }
        var n = 12 + Int(p[0] & 0x0F) * 4
        if p[0] & 0x10 != 0 {
            guard n + 4 <= length else { return nil }
            n += 4 + (Int(p[n + 2]) << 8 | Int(p[n + 3])) * 4
        }
        return n <= length ? n : nil
    }

    static func uint32(_ p: UnsafePointer<UInt8>) -> UInt32 {
        UInt32(p[0]) << 24 | UInt32(p[1]) << 16 | UInt32(p[2]) << 8 | UInt32(p[3])
    }
}
