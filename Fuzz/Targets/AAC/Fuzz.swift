import FuzzSupport
import Codecs
import NIOCore

/// An AudioSpecificConfig (ISO 14496-3 1.6.2.1, from an FLV/RTMP AAC sequence header): written and parsed back equal.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = ByteBuffer(bytes: UnsafeBufferPointer(start: data, count: size))
    guard let config = try? AAC.AudioSpecificConfig(parsing: input) else { return 0 }
    var out = ByteBuffer()
    config.write(to: &out)
    let again = reparsed("a written AudioSpecificConfig") { try AAC.AudioSpecificConfig(parsing: out) }
    check(again == config, "\(config) -> \(again)")
    return 0
}
