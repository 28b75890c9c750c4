import HLS
import ICE
import RTMPBridge
import SFU
import StreamHub

/// Everything `liveswarm serve` can be told. The defaults are the ones in the product brief: one process,
/// no config file, every service on its standard port.
public struct ServerConfiguration: Sendable, Equatable {
    /// Address the listeners bind to.
    public var listenHost = "0.0.0.0"
    public var httpPort = 8080
    public var rtmp = RTMPConfiguration()
    public var hub = HubConfiguration()
    public var hls = SegmenterConfiguration()
    public var stun = STUNServer.Configuration()
    /// The media port (ICE-lite, UDP and TCP 8000).
    public var rtc = MediaPort.Configuration()
    /// WHIP/WHEP forwarding options.
    public var webRTC = RouterRegistry.Options()
    /// Folder of the web demo pages served at `/`. Nil: the `web-demo` folder of the checkout the binary was
    /// built in (found from the working directory or the executable's path); without one, no pages.
    public var webRoot: String?

    public init() {}

    /// Loopback on free ports: what tests use, so that servers can run side by side.
    public static var loopbackEphemeral: ServerConfiguration {
        var c = ServerConfiguration()
        c.listenHost = "127.0.0.1"
        c.httpPort = 0
        c.rtmp.host = "127.0.0.1"
        c.rtmp.port = 0
        c.stun.host = "127.0.0.1"
        c.stun.port = 0
        c.rtc.host = "127.0.0.1"
        c.rtc.port = 0
        return c
    }
}
