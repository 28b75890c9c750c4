import FuzzSupport
import SDP

/// SDP (RFC 8866) as text: a description that parses is written and parsed back equal.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let d = try? SessionDescription(parsing: text) else { return 0 }
    let again = reparsed("written SDP") { try SessionDescription(parsing: d.text) }
    if again != d {
        // The first part that differs, for the report.
        var what = "session \(d.session.count) -> \(again.session.count) lines, media \(d.media.count) -> \(again.media.count)"
        if let i = (0..<min(d.session.count, again.session.count)).first(where: { d.session[$0] != again.session[$0] }) {
            what = "session line \(i): \(String(reflecting: d.session[i])) -> \(String(reflecting: again.session[i]))"
        } else if let i = (0..<min(d.media.count, again.media.count)).first(where: { d.media[$0] != again.media[$0] }) {
            let (x, y) = (d.media[i], again.media[i])
            what = "media \(i): \(x.mediaLine.debugDescription) -> \(y.mediaLine.debugDescription)"
            if let j = (0..<min(x.lines.count, y.lines.count)).first(where: { x.lines[$0] != y.lines[$0] }) {
                what += ", line \(j): \(String(reflecting: x.lines[j])) -> \(String(reflecting: y.lines[j]))"
            }
        }
        fatalError("SDP changed when written and parsed again: \(what)")
    }
    return 0
}
