import FuzzSupport
import Codecs
import NIOCore

/// H.264 configuration from outside: the avcC of an FLV/RTMP sequence header (written and parsed back equal) and a
/// sequence parameter set (the input as one NAL unit, and each SPS the avcC holds).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    _ = try? H264.SequenceParameterSet(parsing: bytes)
    guard let record = try? H264.AVCDecoderConfigurationRecord(parsing: ByteBuffer(bytes: bytes)) else { return 0 }
    for sps in record.sequenceParameterSets { _ = try? H264.SequenceParameterSet(parsing: sps) }
    var out = ByteBuffer()
    record.write(to: &out)
    let again = reparsed("a written avcC") { try H264.AVCDecoderConfigurationRecord(parsing: out) }
    check(again == record, "\(record) -> \(again)")
    return 0
}
