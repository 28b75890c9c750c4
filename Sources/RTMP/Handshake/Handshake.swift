import Digest
import NIOCore

/// The RTMP handshake (RTMP 1.0 section 5.2), plain and with the digest ("complex") scheme.
///
/// Plain: C0/S0 is the version byte 3; C1/S1 are 1536 bytes (time, zero, random); S2 echoes C1 and C2 echoes S1.
/// Digest: Flash-era clients (and ffmpeg) hide an HMAC-SHA256 digest at an offset derived from C1 itself,
/// and some clients check that the server answers in kind: S1 carries a server digest and the last 32 bytes
/// of S2 are keyed by the client's digest. We answer a digest C1 with a digest S1/S2 and a plain C1 with the
/// plain echo, so both kinds of encoder connect.
public enum Handshake {
    public static let version: UInt8 = 3
    public static let packetSize = 1536

    public enum Scheme: Sendable, Equatable {
        case plain
        /// The digest sits at `(sum of 4 bytes at base) % 728 + base + 4`; base 8 or 772.
        case digest(base: Int)
    }

    static let keyTail: [UInt8] = [
        0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E, 0x57,
        0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
    ]
    /// "Genuine Adobe Flash Player 001": signs C1.
    static let clientKey = Array("Genuine Adobe Flash Player 001".utf8)
    /// "Genuine Adobe Flash Media Server 001": signs S1; with the tail it keys the S2 signature.
    static let serverKey = Array("Genuine Adobe Flash Media Server 001".utf8)
    static let serverFullKey = serverKey + keyTail

    static func digestOffset(_ packet: [UInt8], base: Int) -> Int {
        let sum = Int(packet[base]) + Int(packet[base + 1]) + Int(packet[base + 2]) + Int(packet[base + 3])
        return sum % 728 + base + 4
    }

    static func hmac(_ key: [UInt8], _ parts: ArraySlice<UInt8>...) -> [UInt8] {
        Digest.hmacSHA256(key: key, parts.flatMap { $0 })
    }

    /// The digest of `packet` with the 32 digest bytes at `offset` left out.
    static func digest(_ packet: [UInt8], offset: Int, key: [UInt8]) -> [UInt8] {
        hmac(key, packet[0..<offset], packet[(offset + 32)...])
    }

    /// Which scheme a C1 uses: digest if an HMAC with the client key validates at either position.
    public static func scheme(ofC1 c1: [UInt8]) -> Scheme {
        guard c1.count == packetSize else { return .plain }
        for base in [8, 772] {
            let off = digestOffset(c1, base: base)
            if digest(c1, offset: off, key: clientKey)[...] == c1[off..<(off + 32)] { return .digest(base: base) }
        }
        return .plain
    }

    /// S0+S1+S2 for a received C0+C1 (exactly 1537 bytes). Throws on a version other than 3.
    public static func serverResponse(
        c0c1: ByteBuffer, time: UInt32, using rng: inout some RandomNumberGenerator
    ) throws(RTMPError) -> (response: ByteBuffer, scheme: Scheme) {
        var input = c0c1
        guard let c0 = input.readInteger(as: UInt8.self) else { throw .unsupportedVersion(0) }
        guard c0 == version else { throw .unsupportedVersion(c0) }
        guard let c1 = input.readBytes(length: packetSize) else { throw .malformedMessage("C1 shorter than 1536 bytes") }
        let scheme = scheme(ofC1: c1)

        var s1 = randomBytes(packetSize, using: &rng)
        withUnsafeBytes(of: time.bigEndian) { s1.replaceSubrange(0..<4, with: $0) }
        var s2: [UInt8]
        switch scheme {
        case .plain:
            s1.replaceSubrange(4..<8, with: [0, 0, 0, 0])
            s2 = c1  // the plain echo: C1's time, its zero field and its random bytes
        case .digest(let base):
            // A version of 3 or more in S1 tells digest clients to verify S1 and S2.
            s1.replaceSubrange(4..<8, with: [0x04, 0x05, 0x00, 0x01])
            let sOff = digestOffset(s1, base: base)
            s1.replaceSubrange(sOff..<(sOff + 32), with: digest(s1, offset: sOff, key: serverKey))
            let cOff = digestOffset(c1, base: base)
            let key = hmac(serverFullKey, c1[cOff..<(cOff + 32)])
            s2 = randomBytes(packetSize, using: &rng)
            s2.replaceSubrange((packetSize - 32)..., with: hmac(key, s2[0..<(packetSize - 32)]))
        }
        var out = ByteBufferAllocator().buffer(capacity: 1 + 2 * packetSize)
        out.writeInteger(version)
        out.writeBytes(s1)
        out.writeBytes(s2)
        return (out, scheme)
    }

    /// C0+C1 of a plain client handshake (used by our own test and benchmark clients).
    public static func clientHello(time: UInt32, using rng: inout some RandomNumberGenerator) -> ByteBuffer {
        var c1 = randomBytes(packetSize, using: &rng)
        withUnsafeBytes(of: time.bigEndian) { c1.replaceSubrange(0..<4, with: $0) }
        c1.replaceSubrange(4..<8, with: [0, 0, 0, 0])
        var out = ByteBufferAllocator().buffer(capacity: 1 + packetSize)
        out.writeInteger(version)
        out.writeBytes(c1)
        return out
    }

    /// C0+C1 of a digest client handshake, as Flash and ffmpeg send it (digest at base 8).
    public static func digestClientHello(time: UInt32, using rng: inout some RandomNumberGenerator) -> ByteBuffer {
        var c1 = randomBytes(packetSize, using: &rng)
        withUnsafeBytes(of: time.bigEndian) { c1.replaceSubrange(0..<4, with: $0) }
        c1.replaceSubrange(4..<8, with: [0x80, 0x00, 0x07, 0x02])
        let off = digestOffset(c1, base: 8)
        c1.replaceSubrange(off..<(off + 32), with: digest(c1, offset: off, key: clientKey))
        var out = ByteBufferAllocator().buffer(capacity: 1 + packetSize)
        out.writeInteger(version)
        out.writeBytes(c1)
        return out
    }

    /// Checks a server's S1 and S2 against our digest C1, as a strict digest client would.
    public static func verifyServerResponse(c1: [UInt8], s1: [UInt8], s2: [UInt8]) -> Bool {
        guard c1.count == packetSize, s1.count == packetSize, s2.count == packetSize,
              case .digest(let base) = scheme(ofC1: c1) else { return false }
        let sOff = digestOffset(s1, base: base)
        guard digest(s1, offset: sOff, key: serverKey)[...] == s1[sOff..<(sOff + 32)] else { return false }
        let cOff = digestOffset(c1, base: base)
        let key = hmac(serverFullKey, c1[cOff..<(cOff + 32)])
        return hmac(key, s2[0..<(packetSize - 32)])[...] == s2[(packetSize - 32)...]
    }

    static func randomBytes(_ n: Int, using rng: inout some RandomNumberGenerator) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: n)
        var i = 0
        while i < n {
            let word = rng.next()
            withUnsafeBytes(of: word) { w in
                for b in w where i < n {
                    bytes[i] = b
                    i += 1
                }
            }
        }
        return bytes
    }
}
