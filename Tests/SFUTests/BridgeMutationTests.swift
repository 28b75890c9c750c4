import Codecs
import NIOCore
import RTP
import StreamHub
import Testing
import TestSupport
@testable import SFU

/// Publishers' bytes with random damage, through the bridge's frame reading, packetizing and picture gate: nothing
/// traps, every payload fits the budget, and whatever is sent reads back as exactly the frame's NAL units.
@Suite struct BridgeMutationTests {
    static let config: [UInt8] = [0x17, 0, 0, 0, 0, 1, 0x64, 0x00, 0x1E, 0xFF, 0xE1, 0, 7, 0x67, 0x64, 0x00, 0x1E, 0xAC, 0xD9, 0x40,
                                  1, 0, 4, 0x68, 0xEF, 0x8F, 0xCB]
    static func frame(key: Bool, cts: UInt8, sizes: [Int]) -> [UInt8] {
        var out: [UInt8] = [key ? 0x17 : 0x27, 1, 0, 0, cts]
        for (i, n) in sizes.enumerated() {
            out += [UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)]
            out += [i == 0 ? 0x09 : (key ? 0x65 : 0x41)] + (1..<n).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        }
        return out
    }

    @Test func damagedFramesNeverTrapAndWhatIsSentIsWhatCame() throws {
        var rng = SplitMix64(state: 6184_2026)
        var gate = PictureGate()
        var nalLength = 4
        let bases = [Self.config, Self.frame(key: true, cts: 0, sizes: [2, 3000, 40]), Self.frame(key: false, cts: 33, sizes: [2, 900]),
                     Self.frame(key: false, cts: 0, sizes: [2, 1500, 1500])]
        var sent = 0
        for round in 0..<4000 {
            var bytes = rng.mutate(bases[round % bases.count], count: Int.random(in: 0...6, using: &rng))
            if round % 7 == 0 { bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &rng))) }
            let frame = MediaFrame(kind: .video, timestamp: UInt32(round * 33), payload: ByteBuffer(bytes: bytes), receivedAt: 0)
            guard let parsed = try? H264Frame.parse(frame) else { continue }
            switch parsed {
            case .ignored:
                continue
            case .configuration(let c):
                #expect((1...4).contains(c.nalLengthSize) && !c.parameterSets.isEmpty)
                nalLength = c.nalLengthSize
                gate.configured(valid: true)
            case .picture(let cts, let body):
                guard let payloads = try? H264Frame.payloads(frame, body: body, nalLengthSize: nalLength, maxPayload: 600) else { continue }
                var list: [[UInt8]] = []
                H264Frame.forEach(payloads) { list.append(Array($0)) }
                #expect(list.allSatisfy { !$0.isEmpty && $0.count <= 600 })
                if gate.admit(session: 1, keyframe: frame.isKeyframe, dts: Int64(round * 33), compositionTime: cts,
                              nonReference: H264Frame.isNonReference(payloads)) == .send {
                    sent += 1
                }
                // Read back: the frame's NAL units, less AUDs, filler and unspecified types (0, 24-31), in order.
                var d = H264Depacketizer()
                var back: H264Depacketizer.AccessUnit?
                for (i, p) in list.enumerated() {
                    back = try? d.push(sequenceNumber: UInt16(i), timestamp: 1, marker: i == list.count - 1, payload: p[...])
                }
                let sentTypes: Set<UInt8> = Set(1...23).subtracting([9, 12])
                let expected = try H264.nalUnits(avcc: body, nalLengthSize: nalLength).map { Array($0.readableBytesView) }
                    .filter { (unit: [UInt8]) in sentTypes.contains(unit[0] & 0x1F) }
                #expect((back?.nalUnits ?? []) == expected, "round \(round)")
            }
        }
        #expect(sent > 100, "the undamaged frames went: \(sent)")
    }
}
