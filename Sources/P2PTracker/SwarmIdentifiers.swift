import Digest

/// Twenty bytes, the size of BitTorrent's info hashes and peer ids, stored inline (no allocation per peer).
///
/// On the WebTorrent tracker protocol's wire both are "binary strings": JSON strings of exactly 20 characters,
/// each U+0000 to U+00FF standing for one byte (what `String.fromCharCode` makes of a byte array in a browser).
public struct Bytes20: Hashable, Sendable, CustomStringConvertible {
    var high: UInt64
    var middle: UInt64
    var low: UInt32

    public init?(_ bytes: some Collection<UInt8>) {
        guard bytes.count == 20 else { return nil }
        var h: UInt64 = 0, m: UInt64 = 0, l: UInt32 = 0
        for (i, b) in bytes.enumerated() {
            switch i {
            case 0..<8: h = h << 8 | UInt64(b)
            case 8..<16: m = m << 8 | UInt64(b)
            default: l = l << 8 | UInt32(b)
            }
        }
        (high, middle, low) = (h, m, l)
    }

    /// A binary string of 20 characters in U+0000...U+00FF; nil for any other string.
    public init?(binaryString s: String) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(20)
        for scalar in s.unicodeScalars {
            guard scalar.value <= 0xFF, bytes.count < 20 else { return nil }
            bytes.append(UInt8(scalar.value))
        }
        self.init(bytes)
    }

    public var bytes: [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * $0)) }
            + (0..<8).map { UInt8(truncatingIfNeeded: middle >> (56 - 8 * $0)) }
            + (0..<4).map { UInt8(truncatingIfNeeded: low >> (24 - 8 * $0)) }
    }

    /// The wire form: one character per byte.
    public var binaryString: String {
        String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
    }

    /// The wire form as a JSON string literal, quotes included (for clients and load generators that write their own
    /// messages).
    public var jsonString: String {
        var out = ""
        JSONWriter.quote(binaryString, into: &out)
        return out
    }

    /// Lower-case hex, for logs and the API.
    public var hex: String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    public init?(hex: String) {
        let chars = Array(hex.utf8)
        guard chars.count == 40 else { return nil }
        var bytes: [UInt8] = []
        for i in stride(from: 0, to: 40, by: 2) {
            guard let b = UInt8(String(decoding: chars[i..<i + 2], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(b)
        }
        self.init(bytes)
    }

    public var description: String { hex }
}

/// Names a swarm. LiveSwarm's swarms live in their own namespace: the SHA-1 of
/// `liveswarm:v1:APP/STREAM:EPOCH`, where EPOCH is the HLS rendition's start (wall-clock milliseconds), so a
/// stream that ends and is published again gets a fresh swarm whose chunk ids cannot be confused with the old
/// one's. A WebTorrent torrent's info hash (the SHA-1 of a bencoded info dictionary) cannot collide with it by
/// accident, and the tracker serves only hashes of streams that are live.
public typealias InfoHash = Bytes20

/// A peer's self-chosen id within a swarm.
public typealias PeerID = Bytes20

extension Bytes20 {
    /// The info hash of a LiveSwarm stream's swarm (see ``InfoHash``).
    public static func liveSwarm(stream: String, epoch: Int64) -> InfoHash {
        Bytes20(Digest.sha1(Array("liveswarm:v1:\(stream):\(epoch)".utf8)))!
    }
}
