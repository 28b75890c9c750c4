import Testing
import RTP
@testable import SFU

/// The WHIP ingest's reordering: frames out whole and in order, holes waited for and then given up.
@Suite struct FrameAssemblerTests {
    /// Frame `f` of `n` packets starting at sequence number `seq`.
    static func frame(_ f: Int, packets n: Int, from seq: Int) -> [(UInt16, UInt32, Bool)] {
        (0..<n).map { (UInt16(truncatingIfNeeded: seq + $0), UInt32(f * 3000), $0 == n - 1) }
    }

    static func frames(_ outputs: [FrameAssembler.Output]) -> [UInt32] {
        outputs.compactMap { if case .frame(let p) = $0 { p[0].timestamp / 3000 } else { nil } }
    }

    @Test func framesComeOutWholeAndInOrderWhateverTheArrivalOrder() {
        var a = FrameAssembler()
        // Three frames of 3, 1 and 4 packets across the 16-bit wrap; arrival shuffled within a window.
        let packets = Self.frame(0, packets: 3, from: 65533) + Self.frame(1, packets: 1, from: 65536) + Self.frame(2, packets: 4, from: 65537)
        let order = [0, 2, 1, 3, 5, 4, 7, 6]
        var out: [FrameAssembler.Output] = []
        for i in order {
            let (seq, ts, marker) = packets[i]
            out += a.push(sequence: seq, timestamp: ts, marker: marker, bytes: [UInt8(i)], at: Double(i) * 0.001)
        }
        #expect(Self.frames(out) == [0, 1, 2])
        if case .frame(let p) = out[2] { #expect(p.map(\.bytes) == [[4], [5], [6], [7]]) }
        #expect(a.buffer.isEmpty)
    }

    @Test func aHoleHoldsLaterFramesUntilTheRetransmissionComes() {
        var a = FrameAssembler()
        let packets = Self.frame(0, packets: 2, from: 100) + Self.frame(1, packets: 2, from: 102) + Self.frame(2, packets: 1, from: 104)
        var out: [FrameAssembler.Output] = []
        for (i, (seq, ts, m)) in packets.enumerated() where i != 2 { out += a.push(sequence: seq, timestamp: ts, marker: m, bytes: [], at: 0.01 * Double(i)) }
        #expect(Self.frames(out) == [0], "frame 2 waits behind frame 1's missing first packet")
        #expect(a.poll(at: 0.2).isEmpty)
        out = a.push(sequence: 102, timestamp: 3000, marker: false, bytes: [], at: 0.25)
        #expect(Self.frames(out) == [1, 2])
        // Duplicates and packets of frames already out are dropped.
        #expect(a.push(sequence: 102, timestamp: 3000, marker: false, bytes: [], at: 0.3).isEmpty && a.late == 1)
    }

    @Test func aHoleThatNeverFillsIsGivenUpWithItsFrameAndTheNextFramesFollow() {
        var a = FrameAssembler()
        let packets = Self.frame(0, packets: 2, from: 10) + Self.frame(1, packets: 3, from: 12) + Self.frame(2, packets: 2, from: 15)
        var out: [FrameAssembler.Output] = []
        for (i, (seq, ts, m)) in packets.enumerated() where i != 3 { out += a.push(sequence: seq, timestamp: ts, marker: m, bytes: [], at: 0) }
        #expect(Self.frames(out) == [0])
        #expect(a.poll(at: 0.34).isEmpty)
        out = a.poll(at: 0.36)
        #expect(out.first == .gaveUp(dropped: 2), "\(out)")
        #expect(Self.frames(out) == [2])
        // The lost packet arriving now is too late.
        #expect(a.push(sequence: 13, timestamp: 3000, marker: false, bytes: [], at: 0.4).isEmpty && a.late == 1)
    }

    @Test func aFrameStillArrivingIsNotAHole() {
        var a = FrameAssembler()
        // A keyframe of 40 packets paced out over a second: nothing is missing, nothing is given up.
        var out: [FrameAssembler.Output] = []
        for i in 0..<40 { out += a.push(sequence: UInt16(i), timestamp: 0, marker: i == 39, bytes: [], at: Double(i) * 0.025) }
        #expect(out.count == 1 && Self.frames(out) == [0], "\(out)")
    }

    @Test func aHoleWithNoMarkerAfterItResynchronizesOnTheNextMarker() {
        var a = FrameAssembler()
        _ = a.push(sequence: 1, timestamp: 0, marker: true, bytes: [], at: 0)
        // Packet 2 lost; 3 (no marker) waits, then is given up with no frame end known.
        _ = a.push(sequence: 3, timestamp: 3000, marker: false, bytes: [], at: 0)
        #expect(a.poll(at: 1) == [.gaveUp(dropped: 1)])
        #expect(a.push(sequence: 4, timestamp: 3000, marker: true, bytes: [], at: 1).isEmpty, "the end of the frame given up")
        #expect(Self.frames(a.push(sequence: 5, timestamp: 6000, marker: true, bytes: [], at: 1)) == [2])
    }

    @Test func tooManyPacketsBehindAHoleAreGivenUpAtOnce() {
        var a = FrameAssembler()
        a.maxPackets = 10
        _ = a.push(sequence: 0, timestamp: 0, marker: true, bytes: [], at: 0)
        var out: [FrameAssembler.Output] = []
        // Packet 1 lost, then twelve one-packet frames.
        for s in 2...13 { out += a.push(sequence: UInt16(s), timestamp: UInt32(s * 3000), marker: true, bytes: [], at: 0) }
        #expect(out.contains(.gaveUp(dropped: 1)))
        #expect(Self.frames(out).count == 11, "\(out)")
    }

    /// An RTP packet of `payload` bytes and `padding` bytes of padding (the P bit, the last byte counting them).
    static func rtp(_ seq: UInt16, _ ts: UInt32, marker: Bool, payload: [UInt8], padding: Int = 0) -> [UInt8] {
        var p: [UInt8] = [padding > 0 ? 0xA0 : 0x80, (marker ? 0x80 : 0) | 102, UInt8(seq >> 8), UInt8(seq & 0xFF),
                          UInt8(ts >> 24), UInt8(ts >> 16 & 0xFF), UInt8(ts >> 8 & 0xFF), UInt8(ts & 0xFF), 0, 0, 0, 1]
        p += payload
        if padding > 0 { p += [UInt8](repeating: 0, count: padding - 1) + [UInt8(padding)] }
        return p
    }

    /// What Chromium sent under CPU load (a WHIP ingest test, 2026-12-07): a delta frame's first FU-A packet, then
    /// at once, with no sequence number missing and no marker before it, a keyframe (libwebrtc's pacer flushes a
    /// delta frame's queued packets when a keyframe comes). The cut-short start is dropped and the keyframe is
    /// whole; grouped by marker alone the two were one frame the depacketizer refused.
    @Test func aFrameCutShortByTheSenderIsDroppedAndTheKeyframeAfterItIsWhole() {
        var a = FrameAssembler()
        var out: [FrameAssembler.Output] = []
        out += a.push(sequence: 10, timestamp: 0, marker: true, bytes: Self.rtp(10, 0, marker: true, payload: [0x41, 1]), at: 0)
        // Frame 1: an FU-A start (non-IDR), and nothing more of it.
        out += a.push(sequence: 11, timestamp: 3000, marker: false, bytes: Self.rtp(11, 3000, marker: false, payload: [0x7C, 0x81, 1]), at: 0.01)
        // Frame 2, a keyframe: STAP-A (SPS, PPS), then an IDR in two fragments.
        let key: [(UInt16, Bool, [UInt8])] = [(12, false, [0x78, 0, 2, 0x67, 1, 0, 2, 0x68, 1]), (13, false, [0x7C, 0x85, 1]), (14, true, [0x7C, 0x45, 2])]
        for (seq, m, payload) in key {
            out += a.push(sequence: seq, timestamp: 6000, marker: m, bytes: Self.rtp(seq, 6000, marker: m, payload: payload), at: 0.02)
        }
        #expect(out.count == 3 && Self.frames(out) == [0, 2] && out[1] == .cutShort(dropped: 1), "\(out)")
        if case .frame(let packets) = out.last { #expect(packets.map(\.sequence) == [12, 13, 14].map { Int64($0) + 65536 }) }
        // The keyframe depacketizes (it did not when glued to the FU-A start).
        if case .frame(let packets) = out.last {
            var d = H264Depacketizer()
            var unit: H264Depacketizer.AccessUnit?
            for (i, p) in packets.enumerated() {
                unit = try? d.push(sequenceNumber: UInt16(i), timestamp: 6000, marker: p.marker, payload: p.bytes[12...])
            }
            #expect(unit?.nalUnits.map { $0[0] & 0x1F } == [7, 8, 5])
        }
        #expect(a.buffer.isEmpty && a.late == 0)
    }

    /// Padding-only packets (bandwidth probing on the media SSRC) carry the last frame's timestamp: between two
    /// frames or inside one they cut nothing, and a frame with them comes out whole.
    @Test func paddingWithTheLastFramesTimestampCutsNothing() {
        var a = FrameAssembler()
        var out: [FrameAssembler.Output] = []
        out += a.push(sequence: 1, timestamp: 0, marker: true, bytes: Self.rtp(1, 0, marker: true, payload: [0x65, 1]), at: 0)
        for seq: UInt16 in 2...3 { out += a.push(sequence: seq, timestamp: 0, marker: false, bytes: Self.rtp(seq, 0, marker: false, payload: [], padding: 200), at: 0) }
        out += a.push(sequence: 4, timestamp: 3000, marker: false, bytes: Self.rtp(4, 3000, marker: false, payload: [0x7C, 0x81, 1]), at: 0)
        out += a.push(sequence: 5, timestamp: 0, marker: false, bytes: Self.rtp(5, 0, marker: false, payload: [], padding: 100), at: 0)
        out += a.push(sequence: 6, timestamp: 3000, marker: true, bytes: Self.rtp(6, 3000, marker: true, payload: [0x7C, 0x41, 2]), at: 0)
        #expect(Self.frames(out) == [0, 0] && !out.contains { if case .cutShort = $0 { true } else { false } }, "\(out)")
        if case .frame(let packets) = out.last { #expect(packets.count == 5) }
    }

    @Test func senderReportsLineTracksUpOnThePublishersClock() {
        var c = IngestClock(clockRates: [90000, 48000])
        // Video arrives first at 100 ms, audio at 130 ms: by arrival, audio sample 0 is at 130 ms.
        #expect(c.time(0, rtp: 1000, arrival: 100) == 100)
        #expect(c.time(1, rtp: 5000, arrival: 130) == 130)
        #expect(c.time(0, rtp: 1000 + 9000, arrival: 200) == 200)
        // The reports say both were captured at the same NTP instant (video rtp 1000, audio rtp 5000).
        let ntp: UInt64 = 3_900_000_000 << 32
        c.report(0, ntp: ntp, rtp: 1000, arrival: 250)
        c.report(1, ntp: ntp, rtp: 5000, arrival: 260)
        #expect(c.time(0, rtp: 1000, arrival: 300) == 250)
        #expect(c.time(1, rtp: 5000, arrival: 300) == 250, "audio moves to the video's time of the same instant")
        #expect(c.time(1, rtp: 5000 + 48000, arrival: 1300) == 1250)
        // RTP time wraps.
        var w = IngestClock(clockRates: [90000])
        _ = w.time(0, rtp: UInt32.max - 899, arrival: 0)
        #expect(w.time(0, rtp: 8100, arrival: 0) == 100)
    }
}
