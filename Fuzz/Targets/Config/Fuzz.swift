import FuzzSupport
import Server

/// The config file (YAML, docs/CONFIG.md) as `liveswarm --config` reads it: parsed, then applied over the
/// defaults. Either it is refused with a message, or the configuration it gives has every port a port.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let file = try? ConfigFile.parse(text), let c = try? file.apply(to: ServerConfiguration()) else { return 0 }
    for port in [c.httpPort, c.rtmp.port, c.stun.port, c.rtc.port] {
        check((0...65535).contains(port), "port \(port) from:\n\(text)")
    }
    return 0
}
