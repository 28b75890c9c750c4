import FuzzSupport
import FLV
import NIOCore

/// An FLV file's tags (as HTTP-FLV and RTMP carry them) and their audio and video headers: tags are read until the
/// input ends or a tag is refused; each one read is written and read back equal.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var buffer = ByteBuffer(bytes: UnsafeBufferPointer(start: data, count: size))
    if size > 0, data[0] == UInt8(ascii: "F") { _ = try? FLVHeader(parsing: &buffer) }
    var count = 0
    while count < 1000, let tag = (try? FLVTag.parse(from: &buffer, maxBodySize: 1 << 20)) ?? nil {
        count += 1
        _ = try? AudioTagHeader(parsing: tag.body)
        _ = try? VideoTagHeader(parsing: tag.body)
        var out = ByteBuffer()
        tag.write(to: &out)
        let again = reparsed("a written tag") { try FLVTag.parse(from: &out, maxBodySize: 1 << 20) }
        check(again == tag, "\(tag) -> \(String(describing: again))")
    }
    return 0
}
