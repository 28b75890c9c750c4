import FuzzSupport
import AMF0
import NIOCore

/// AMF0 values (RTMP commands and metadata): what parses is written, and writing what that parses gives the same
/// bytes (compared as bytes: a NaN number is not equal to itself).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = ByteBuffer(bytes: UnsafeBufferPointer(start: data, count: size))
    guard let values = try? AMF0Value.parseAll(input) else { return 0 }
    var first = ByteBuffer()
    for v in values { v.write(to: &first) }
    let again = reparsed("written AMF0") { try AMF0Value.parseAll(first) }
    var second = ByteBuffer()
    for v in again { v.write(to: &second) }
    check(first == second, "AMF0 changed when written again")
    return 0
}
