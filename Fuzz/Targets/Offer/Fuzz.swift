import FuzzSupport
import DTLS
import ICE
import SDP
import SFU

/// A WHIP, WHEP or room offer as the SFU reads it (`RemoteOffer`: BUNDLE, mids, codecs, extensions, ICE and DTLS
/// parameters), and the answer the server writes for it. The answer must parse, come back equal when written and
/// parsed again, and hold one m-section per offered one, in the offer's order with its mid (RFC 8829 5.3.1); the
/// codecs it accepts are the offer's own.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let sdp = try? SessionDescription(parsing: text), let offer = try? RemoteOffer(sdp) else { return 0 }
    var accepted: [AnswerSection] = []
    for (i, s) in offer.sections.enumerated() {
        guard let codec = CodecPolicy.publishCodec(for: s, preferH264: i % 2 == 1) else { continue }
        check(s.codecs.contains { $0.payloadType == codec.payloadType && $0.name == codec.name }, "a codec the offer did not have")
        let direction: MediaDirection = s.direction.sends ? .recvonly : .sendonly
        accepted.append(AnswerSection(mid: s.mid, kind: s.kind, codec: codec, direction: direction,
                                      sending: direction.sends ? (ssrc: 1111, rtxSSRC: 2222, cname: "c", stream: "s", track: "t") : nil))
    }
    let answer = offer.answer(accepted, credentials: credentials, fingerprint: fingerprint, candidates: candidates)
    let again: SessionDescription
    do { again = try SessionDescription(parsing: answer.text) } catch { fatalError("the answer does not parse: \(error)\n\(answer.text)") }
    check(again == answer, "the answer changed when written and parsed:\n\(answer.text)")
    let offered = sdp.media.map { $0.attribute("mid") }
    let answered = answer.media.map { $0.attribute("mid") }
    check(offered == answered, "offered mids \(offered), answered \(answered)")
    return 0
}

let credentials = ICECredentials(ufrag: "srvU", password: "serverpassword0123456789")
let fingerprint = Fingerprint(bytes: [UInt8](repeating: 0xAB, count: 32))!
let candidates = [ICECandidate(foundation: "1", transport: .udp, priority: ICECandidate.priority(.udp, index: 0), host: "192.0.2.1", port: 8443)]
