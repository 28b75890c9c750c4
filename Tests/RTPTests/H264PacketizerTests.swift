import RTP
import Testing
import TestSupport

@Suite struct H264PacketizerTests {
    // A Constrained Baseline SPS and a PPS (bytes as x264 writes them), and slices with a recognisable body.
    static let sps: [UInt8] = [0x67, 0x42, 0xC0, 0x1E, 0xDA, 0x02, 0x80]
    static let pps: [UInt8] = [0x68, 0xCE, 0x3C, 0x80]
    static func slice(_ header: UInt8, _ count: Int) -> [UInt8] { [header] + (1..<count).map { UInt8($0 % 251) } }

    @Test func parameterSetsGoInOneSTAPABeforeTheIDR() {
        let idr = Self.slice(0x65, 3000)
        let payloads = H264RTP.packetize([[0x09, 0xF0], idr], parameterSets: [Self.sps, Self.pps], maxPayload: 1200)
        // STAP-A (RFC 6184 5.7.1): F 0, NRI the largest of its units (3 from the SPS), type 24 -> 0x78; each unit
        // after a 16-bit size. The AUD (type 9) is not sent.
        #expect(payloads[0] == [0x78, 0x00, 0x07] + Self.sps + [0x00, 0x04] + Self.pps)
        // FU-A (5.8): indicator = F|NRI of the IDR (0x60) | 28 = 0x7C; header S/E bits | type 5. The IDR's 2999
        // bytes after its header go 1198 + 1198 + 603.
        #expect(payloads.count == 4)
        #expect(payloads[1].prefix(2) == [0x7C, 0x85] && payloads[1].count == 1200)
        #expect(payloads[2].prefix(2) == [0x7C, 0x05] && payloads[2].count == 1200)
        #expect(payloads[3].prefix(2) == [0x7C, 0x45] && payloads[3].count == 605)
        #expect(Array(payloads[1].dropFirst(2) + payloads[2].dropFirst(2) + payloads[3].dropFirst(2)) == Array(idr.dropFirst()))
    }

    @Test func smallUnitsAreSingleNALUnitPackets() {
        let sei = Self.slice(0x06, 40), p = Self.slice(0x41, 900)
        let payloads = H264RTP.packetize([sei, p, [], [0x0C, 0xFF, 0xFF]], maxPayload: 1200)
        #expect(payloads == [sei, p], "SEI and slice as they are; the empty unit and the filler (type 12) left out")
        // Exactly the limit is still a single packet; one byte more is two fragments.
        #expect(H264RTP.packetize([Self.slice(0x41, 1200)], maxPayload: 1200).count == 1)
        let two = H264RTP.packetize([Self.slice(0x41, 1201)], maxPayload: 1200)
        #expect(two.map(\.count) == [1200, 4] && two[0][1] == 0x81 && two[1][1] == 0x41)
    }

    /// NAL units of the types H.264 leaves unspecified (0, 24-31) are not sent: as single NAL unit packets they would
    /// be read as STAP-A, FU-A and the like (an RTMP publisher's bytes, found with fuzz-h264's depacketizer fix).
    @Test func unspecifiedNALUnitTypesAreLeftOut() {
        let units: [[UInt8]] = [[0x00, 1], [0x7C, 0x85, 2], [0x78, 0, 1, 0x41], [0x1F, 3], [0x65, 4]]
        #expect(H264RTP.packetize(units) == [[0x65, 4]])
    }

    @Test func parameterSetsTooBigForOneSTAPAGoAlone() {
        let bigSPS = [UInt8(0x67)] + [UInt8](repeating: 0x11, count: 700)
        let payloads = H264RTP.packetize([Self.slice(0x65, 10)], parameterSets: [bigSPS, Self.pps], maxPayload: 600)
        // 701 bytes of SPS is more than 600: fragmented on its own (600 + 104 bytes with headers), then the PPS alone.
        #expect(payloads.map { $0.count } == [600, 104, 4, 10])
        #expect(payloads[0].prefix(2) == [0x7C, 0x87] && payloads[2] == Self.pps)
    }

    @Test func roundTripThroughTheDepacketizer() throws {
        var rng = SplitMix64(state: 6184)
        var d = H264Depacketizer()
        var seq: UInt16 = 65530  // wraps
        for au in 0..<40 {
            let idr = au % 10 == 0
            var units: [[UInt8]] = [Self.slice(0x06, Int.random(in: 5...50, using: &rng))]
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                units.append(Self.slice(idr ? 0x65 : 0x41, Int.random(in: 1...5000, using: &rng)))
            }
            let payloads = H264RTP.packetize(units, parameterSets: idr ? [Self.sps, Self.pps] : [], maxPayload: 1000)
            #expect(payloads.allSatisfy { $0.count <= 1000 })
            var got: H264Depacketizer.AccessUnit?
            for (i, p) in payloads.enumerated() {
                let out = try d.push(sequenceNumber: seq, timestamp: UInt32(au * 3000), marker: i == payloads.count - 1, payload: p[...])
                seq &+= 1
                if i < payloads.count - 1 { #expect(out == nil) } else { got = out }
            }
            #expect(got?.timestamp == UInt32(au * 3000))
            #expect(got?.nalUnits == (idr ? [Self.sps, Self.pps] : []) + units)
        }
    }

    @Test func aGapDropsOnlyItsAccessUnit() throws {
        var d = H264Depacketizer()
        let big = H264RTP.packetize([Self.slice(0x41, 3000)])  // 3 fragments
        #expect(try d.push(sequenceNumber: 1, timestamp: 100, marker: false, payload: big[0][...]) == nil)
        // Fragment 2 (sequence 2) lost.
        #expect(throws: H264Depacketizer.Failure.gap(expected: 2, got: 3)) {
            try d.push(sequenceNumber: 3, timestamp: 100, marker: true, payload: big[2][...])
        }
        let next = try d.push(sequenceNumber: 4, timestamp: 200, marker: true, payload: Self.slice(0x41, 10)[...])
        #expect(next?.nalUnits == [Self.slice(0x41, 10)])
        // A gap in the middle of an access unit: the rest of it up to the marker is dropped too.
        _ = try d.push(sequenceNumber: 5, timestamp: 300, marker: false, payload: big[0][...])
        #expect(throws: H264Depacketizer.Failure.gap(expected: 6, got: 7)) {
            try d.push(sequenceNumber: 7, timestamp: 300, marker: false, payload: big[1][...])
        }
        #expect(try d.push(sequenceNumber: 8, timestamp: 300, marker: true, payload: big[2][...]) == nil)
        #expect(try d.push(sequenceNumber: 9, timestamp: 400, marker: true, payload: Self.slice(0x41, 10)[...]) != nil)
    }

    @Test(arguments: [
        ([], H264Depacketizer.Failure.badAggregate),
        ([0x78], .badAggregate),
        ([0x78, 0x00], .badAggregate),
        ([0x78, 0x00, 0x05, 0x67, 0x42], .badAggregate),
        ([0x78, 0x00, 0x00], .badAggregate),
        ([0x7C, 0x85], .badFragment),
        ([0x7C, 0x05, 0x11], .badFragment),
        ([0x79, 0x00], .unsupported(25)),
        ([0x7D, 0x85, 0x00], .unsupported(29)),
        ([0x1E], .unsupported(30)),
        ([0x00, 0x01], .unsupported(0)),
        // Found by fuzz-h264: a fragment or an aggregate carrying a NAL unit of a type that exists only in RTP
        // payloads (24-31) or is unspecified (0) came out as a NAL unit, which the packetizer then sent on as a
        // single NAL unit packet that viewers read as a STAP-A or an FU-A. And an FU with both its start and end
        // bits set (RFC 6184 5.8: MUST NOT).
        ([0x7C, 0xDC, 0xDC, 0xDC], .badFragment),
        ([0x7C, 0x9C, 0x01], .unsupported(28)),
        ([0x7C, 0x98, 0x01], .unsupported(24)),
        ([0x7C, 0x80, 0x01], .unsupported(0)),
        ([0x78, 0x00, 0x02, 0x7C, 0x85], .unsupported(28)),
        ([0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x01, 0x00], .unsupported(0)),
    ] as [([UInt8], H264Depacketizer.Failure)])
    func malformedPayloadsAreNamed(payload: [UInt8], failure: H264Depacketizer.Failure) {
        var d = H264Depacketizer()
        #expect(throws: failure) { try d.push(sequenceNumber: 1, timestamp: 1, marker: true, payload: payload[...]) }
        // The depacketizer carries on with the next access unit.
        #expect((try? d.push(sequenceNumber: 2, timestamp: 2, marker: true, payload: [0x41, 0x01][...])) != nil)
    }

    @Test func fragmentStartWhileOneIsOpenIsRefused() throws {
        var d = H264Depacketizer()
        _ = try d.push(sequenceNumber: 1, timestamp: 1, marker: false, payload: [0x7C, 0x85, 0x01][...])
        #expect(throws: H264Depacketizer.Failure.badFragment) {
            try d.push(sequenceNumber: 2, timestamp: 1, marker: false, payload: [0x7C, 0x85, 0x02][...])
        }
    }

    /// Random payloads (any NAL type, sizes, fragment bits) in random order: no trap, and any access unit handed
    /// out holds only non-empty NAL units.
    @Test func randomPayloadsNeverTrap() {
        var rng = SplitMix64(state: 28)
        var d = H264Depacketizer()
        for i in 0..<20_000 {
            let n = Int.random(in: 0...12, using: &rng)
            let p = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let out = try? d.push(sequenceNumber: UInt16(truncatingIfNeeded: i / 3), timestamp: UInt32(i / 5),
                                  marker: Bool.random(using: &rng), payload: p[...])
            #expect(out?.nalUnits.allSatisfy { !$0.isEmpty && (1...23).contains($0[0] & 0x1F) } ?? true)
        }
    }
}
