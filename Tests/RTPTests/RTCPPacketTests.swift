import RTP
import Testing
import TestSupport

@Suite struct RTCPPacketTests {
    static let report = ReceptionReport(ssrc: 0x1111_1111, fractionLost: 25, cumulativeLost: -3, highestSequence: 0x0001_0010,
                                        jitter: 77, lastSR: 0xABCD_EF01, delaySinceLastSR: 65536)

    @Test func compoundOfReportsDescriptionAndByeRoundTrips() throws {
        let packets: [RTCPPacket] = [
            .senderReport(SenderReport(ssrc: 0xDEAD_BEEF, ntpTimestamp: 0xE8F1_0000_8000_0000, rtpTimestamp: 90000,
                                       packetCount: 10, octetCount: 12_000, reports: [Self.report])),
            .sourceDescription(SourceDescription(chunks: [.init(ssrc: 0xDEAD_BEEF, cname: "liveswarm-cname")])),
            .receiverReport(ReceiverReport(ssrc: 5, reports: [])),
            .goodbye(Goodbye(ssrcs: [0xDEAD_BEEF, 9])),
        ]
        let bytes = RTCPPacket.writeCompound(packets)
        #expect(bytes.count % 4 == 0)
        #expect(bytes[0] == 0x81 && bytes[1] == 200 && bytes[2] == 0 && bytes[3] == 12, "SR with one block is 13 words")
        #expect(try RTCPPacket.parseCompound(bytes) == packets)
    }

    /// RFC 4585 6.2.1: lost packets 100, 101, 103 and 116 fit one entry (PID 100, BLP bits 0, 2 and 15); 200
    /// needs another.
    /// Found by fuzz-rtcp: a padded packet of an unknown type was kept without its padding but with its header
    /// still announcing it and the old length, and was written back as a truncated packet.
    @Test func aPaddedUnknownPacketIsWrittenBackWhole() throws {
        let input: [UInt8] = [0xBF, 0x89, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0x05]
        let packets = try RTCPPacket.parseCompound(input)
        #expect(packets == [.unknown(packetType: 0x89, format: 31, bytes: [0x9F, 0x89, 0x00, 0x01, 0, 0, 0, 0])])
        let written = RTCPPacket.writeCompound(packets)
        #expect(try RTCPPacket.parseCompound(written) == packets)
        // Not last in a compound any more, it is still a valid packet.
        let both = RTCPPacket.writeCompound(packets + [.pictureLoss(PictureLossIndication(senderSSRC: 1, mediaSSRC: 2))])
        #expect(try RTCPPacket.parseCompound(both).count == 2)
    }

    @Test func genericNACKPacksIntoPIDAndBLP() throws {
        let nack = GenericNACK(senderSSRC: 1, mediaSSRC: 2, lost: [100, 101, 103, 116, 200])
        var bytes: [UInt8] = []
        RTCPPacket.nack(nack).write(to: &bytes)
        #expect(bytes == [UInt8](hex: "81 cd 00 04 00 00 00 01 00 00 00 02 00 64 80 05 00 c8 00 00"))
        #expect(try RTCPPacket.parseCompound(bytes) == [.nack(nack)])
        // Across the sequence number wrap.
        let wrap = GenericNACK(senderSSRC: 1, mediaSSRC: 2, lost: [65534, 65535, 0, 3])
        var w: [UInt8] = []
        RTCPPacket.nack(wrap).write(to: &w)
        #expect(w.count == 16, "one entry covers 65534...3")
        #expect(try RTCPPacket.parseCompound(w) == [.nack(wrap)])
    }

    @Test func pliFirAndUnknownFeedback() throws {
        let pli = RTCPPacket.pictureLoss(PictureLossIndication(senderSSRC: 1, mediaSSRC: 0xCAFE))
        let fir = RTCPPacket.fullIntraRequest(FullIntraRequest(senderSSRC: 1, entries: [.init(ssrc: 0xCAFE, sequenceNumber: 7)]))
        // REMB (PSFB FMT 15, "REMB", 1 SSRC, 1 000 000 bit/s as exponent 0 and mantissa 0x0F4240) is kept whole.
        let remb = [UInt8](hex: "8f ce 00 05 00 00 00 01 00 00 00 00 52 45 4d 42 01 0f 42 40 00 00 ca fe")
        let bytes = RTCPPacket.writeCompound([pli, fir]) + remb
        let parsed = try RTCPPacket.parseCompound(bytes)
        #expect(parsed == [pli, fir, .unknown(packetType: 206, format: 15, bytes: remb)])
        #expect(RTCPPacket.writeCompound(parsed) == bytes)
        #expect(Array(bytes[0..<4]) == [0x81, 206, 0, 2])
    }

    @Test(arguments: [
        ("empty", [UInt8](), RTPError.empty),
        ("3 bytes", [UInt8](hex: "81 c9 00"), .truncated(needed: 4, available: 3)),
        ("version 1", [UInt8](hex: "41 c9 00 01 00 00 00 01"), .badVersion(1)),
        ("length past the end", [UInt8](hex: "81 c9 00 07 00 00 00 01"), .badLength(declared: 32, available: 8)),
        ("SR shorter than its count", [UInt8](hex: "81 c8 00 06 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"),
         .malformed(packetType: 200)),
        ("RR count beyond its length", [UInt8](hex: "82 c9 00 01 00 00 00 01"), .malformed(packetType: 201)),
        ("NACK without FCI", [UInt8](hex: "81 cd 00 02 00 00 00 01 00 00 00 02"), .malformed(packetType: 205)),
        ("FIR with half an entry", [UInt8](hex: "84 ce 00 03 00 00 00 01 00 00 00 00 00 00 ca fe"), .malformed(packetType: 206)),
        ("SDES item past the end", [UInt8](hex: "81 ca 00 02 00 00 00 01 01 09 61 62"), .malformed(packetType: 202)),
        ("padding not on the last packet", [UInt8](hex: "a1 ce 00 02 00 00 00 01 00 00 00 04 81 ce 00 02 00 00 00 01 00 00 00 02"),
         .badPadding(4)),
        ("padding count beyond the packet", [UInt8](hex: "a1 ce 00 02 00 00 00 01 00 00 00 20"), .badPadding(32)),
    ])
    func malformedCompoundsThrowANamedError(_ name: String, _ bytes: [UInt8], _ expected: RTPError) {
        #expect(throws: expected, "\(name)") { try RTCPPacket.parseCompound(bytes) }
    }

    @Test func mutationsNeverTrap() {
        let base = RTCPPacket.writeCompound([
            .receiverReport(ReceiverReport(ssrc: 5, reports: [Self.report])),
            .nack(GenericNACK(senderSSRC: 1, mediaSSRC: 2, lost: [1, 2, 40])),
            .sourceDescription(SourceDescription(chunks: [.init(ssrc: 3, cname: "x")])),
        ])
        var rng = SplitMix64(state: 0x72C)
        for _ in 0..<20_000 {
            var b = base
            for _ in 0..<(1 + Int(rng.next() % 3)) { b[Int(rng.next() % UInt64(b.count))] ^= UInt8(truncatingIfNeeded: rng.next()) | 1 }
            if rng.next() % 4 == 0 { b.removeLast(Int(rng.next() % UInt64(b.count))) }
            _ = try? RTCPPacket.parseCompound(b)
        }
    }
}
