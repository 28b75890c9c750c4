import RTP
import Testing

/// Reception report blocks from what arrived (RFC 3550 6.4.1 and appendix A), numbers worked out by hand.
@Suite struct ReceiveStatisticsTests {
    /// 90 kHz video at 100 packets/s, 900 ticks apart, arriving exactly on time.
    static func feed(_ s: inout ReceiveStatistics, _ sequences: some Sequence<UInt16>, from start: UInt16 = 0, at t0: Double = 0) {
        for seq in sequences {
            let i = Double(seq &- start)
            s.record(sequence: seq, timestamp: UInt32(i * 900), arrival: t0 + i / 100)
        }
    }

    static func report(_ s: inout ReceiveStatistics, at now: Double) throws -> ReceptionReport {
        let r = s.report(at: now)
        return try #require(r)
    }

    @Test func lossInAllAndSinceTheLastReport() throws {
        var s = ReceiveStatistics(ssrc: 7, clockRate: 90000)
        let none = s.report(at: 0)
        #expect(none == nil, "nothing to report before the first packet")
        Self.feed(&s, (0..<100).filter { $0 % 10 != 3 })  // 10 of 100 lost
        let first = try Self.report(&s, at: 1)
        #expect(first.ssrc == 7 && first.highestSequence == 99 && first.cumulativeLost == 10)
        #expect(first.fractionLost == 25)  // 10/100 * 256, truncated
        #expect(first.jitter == 0, "packets on time have no jitter")
        Self.feed(&s, 100..<200)  // none lost in the second interval
        let second = try Self.report(&s, at: 2)
        #expect(second.highestSequence == 199 && second.cumulativeLost == 10 && second.fractionLost == 0)
    }

    @Test func sequenceWrapExtendsTheHighestNumber() throws {
        var s = ReceiveStatistics(ssrc: 1, clockRate: 90000)
        Self.feed(&s, (0..<20).map { UInt16(65526) &+ $0 }, from: 65526)  // 65526 ... 65535, 0 ... 9
        let r = try Self.report(&s, at: 1)
        #expect(r.highestSequence == 65536 + 9 && r.cumulativeLost == 0)
    }

    @Test func duplicatesAndLatePacketsDoNotMoveTheHighestNumber() throws {
        var s = ReceiveStatistics(ssrc: 1, clockRate: 90000)
        Self.feed(&s, [0, 1, 2, 4, 3, 4, 5])  // 3 late, 4 twice
        let r = try Self.report(&s, at: 1)
        #expect(r.highestSequence == 5)
        #expect(r.cumulativeLost == -1, "a duplicate makes the count negative (RFC 3550 6.4.1)")
        #expect(r.fractionLost == 0)
    }

    @Test func aRestartedSequenceIsCountedAfresh() throws {
        var s = ReceiveStatistics(ssrc: 1, clockRate: 90000)
        Self.feed(&s, 0..<50)
        Self.feed(&s, 30000..<30010, from: 30000, at: 1)
        let r = try Self.report(&s, at: 2)
        #expect(r.highestSequence == 30009 && r.cumulativeLost == 0)
    }

    @Test func jitterFollowsArrivalVariation() throws {
        var s = ReceiveStatistics(ssrc: 1, clockRate: 90000)
        // Packets 10 ms apart in RTP time, arriving alternately 5 ms early and 5 ms late: each transit difference
        // is 10 ms = 900 ticks, and J converges to 900 (J += (D - J) / 16).
        for i in 0..<400 {
            let wobble = i % 2 == 0 ? -0.005 : 0.005
            s.record(sequence: UInt16(i), timestamp: UInt32(i * 900), arrival: Double(i) / 100 + wobble)
        }
        let r = try Self.report(&s, at: 5)
        #expect((890...900).contains(r.jitter), "\(r.jitter)")
    }

    @Test func lastSenderReportAndDelaySinceIt() throws {
        var s = ReceiveStatistics(ssrc: 1, clockRate: 48000)
        s.record(sequence: 1, timestamp: 0, arrival: 10)
        #expect(try Self.report(&s, at: 10).lastSR == 0, "no SR yet: LSR and DLSR are 0")
        s.senderReport(ntpTimestamp: 0x1234_5678_9ABC_DEF0, arrival: 10)
        let r = try Self.report(&s, at: 10.5)
        #expect(r.lastSR == 0x5678_9ABC)
        #expect(r.delaySinceLastSR == 32768, "0.5 s in 1/65536 s")
    }
}
