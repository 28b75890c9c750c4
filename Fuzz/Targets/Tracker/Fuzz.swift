import P2PTracker

/// WebTorrent tracker messages (JSON over the tracker's WebSocket): parse, and nothing else may happen.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    _ = try? TrackerRequest(parsing: String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self))
    return 0
}
