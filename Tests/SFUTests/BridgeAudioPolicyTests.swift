import SDP
import Testing
@testable import SFU

/// The bridge's audio answer and the clock its sender reports use, without sockets.
@Suite struct BridgeAudioPolicyTests {
    /// Chromium 156's play offer: the answer takes its Opus payload type and parameters, says stereo, and keeps no
    /// feedback (the bridge acts on none for audio).
    @Test func opusFromChromiumsOfferIsAnsweredStereo() throws {
        let offer = try RemoteOffer(parsing: NegotiationTests.fixture("chromium-156-play-offer"))
        let audio = try #require(offer.sections.first { $0.kind == .audio })
        let codec = try #require(CodecPolicy.bridgeAudioCodec(in: audio))
        #expect(codec.payloadType == 111 && codec.rtpmap == "opus/48000/2")
        #expect(codec.parameters == "minptime=10;useinbandfec=1;stereo=1;sprop-stereo=1", "\(codec.parameters ?? "-")")
        #expect(codec.feedback.isEmpty)
        let video = try #require(offer.sections.first { $0.kind == .video })
        #expect(CodecPolicy.bridgeAudioCodec(in: video) == nil)
    }

    /// The stream's time maps onto NTP at the anchor and runs at one NTP second per 1000 ms of stream time.
    @Test func streamTimeMapsOntoNTP() {
        // 2023-11-14T22:13:20.5Z
        let clock = StreamNTPClock(streamMs: 1000, unixNanoseconds: 1_700_000_000_500_000_000)
        let seconds: UInt64 = 1_700_000_000 + 2_208_988_800
        #expect(clock.ntp(1000) == seconds << 32 | 0x8000_0000)
        #expect(clock.ntp(1500) == (seconds + 1) << 32)
        #expect(abs(Double(Int64(bitPattern: clock.ntp(1000.25) &- clock.ntp(1000))) - 0.00025 * 4_294_967_296) <= 1)
        #expect(clock.ntp(0) == clock.ntp(1000) &- (1 << 32), "earlier stream time, earlier NTP")
    }

    /// The viewer's RTP time follows the stream's with its offset, wraps, marks talkspurts, and never goes back.
    @Test func opusRTPTimeNeverGoesBack() {
        var clock = OpusRTPClock(offset: UInt32.max - 1000)
        #expect(clock.stamp(48_000) == (UInt32(48_000 - 1001), true))
        #expect(clock.stamp(48_960) == (UInt32(48_960 - 1001), false))
        // Past the wrap of 32 bits.
        #expect(clock.stamp(49_920).timestamp == 48_919)
        // A gap: time moves on by it, with the marker.
        #expect(clock.stamp(96_000) == (UInt32(96_000 - 1001), true))
        // The feed's clock restarts 10 s earlier: the next packet is one packet later than the last, and the
        // ones after it follow from there.
        let back = clock.stamp(-384_000)
        #expect(back == (UInt32(96_000 - 1001 + 960), true))
        #expect(clock.stamp(-383_040) == (UInt32(96_000 - 1001 + 1920), false))
        // The same stream time twice: still later.
        let again = clock.stamp(-383_040)
        #expect(again.timestamp == UInt32(96_000 - 1001 + 2880))
    }
}
