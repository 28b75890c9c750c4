import DTLS
import Foundation
import HLS
import ICE
import P2PTracker
import RTMPBridge
import SFU
import Signaling
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
    /// The P2P tracker's limits (`/tracker`, docs/P2P.md).
    public var tracker = Tracker.Configuration()
    /// WHIP/WHEP forwarding options.
    public var webRTC = RouterRegistry.Options()
    /// Meeting rooms (`/ws`, docs/ROOMS.md): limits, video codec, and the secret that makes joins need a token.
    public var rooms = RoomService.Configuration()
    /// The bearer token operator routes that change state need (`--api-token`). Nil: those routes are refused.
    public var apiToken: String?
    /// Streams pushed to other RTMP servers from the start (config `pushes:`; more through the API).
    public var pushes: [PushEntry] = []
    /// The DTLS certificate and its private key (PEM files, ECDSA P-256), so the fingerprint stays the same across
    /// restarts. Nil: a fresh certificate at each start.
    public var dtlsCertificate: DTLSCertificateFiles?
    /// Folder of the web demo pages served at `/`. Nil: the `web-demo` folder of the checkout the binary was
    /// built in (found from the working directory or the executable's path); without one, no pages.
    public var webRoot: String?
    /// What the HTTP port reads of a request before it refuses it (URL, headers, body).
    public var httpLimits = HTTPLimits()
    /// Requests a second per client address for the API, WebRTC sessions and WebSocket upgrades.
    public var httpRateLimits = HTTPRateLimits()

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
        // Every test client comes from 127.0.0.1: the rate limits are for the tests that test them.
        c.httpRateLimits = .off
        return c
    }
}

/// Where the DTLS certificate and key are (`rtc.certificate_file`, `rtc.key_file`).
public struct DTLSCertificateFiles: Sendable, Equatable {
    public var certificate: String
    public var key: String

    public init(certificate: String, key: String) { (self.certificate, self.key) = (certificate, key) }

    /// The certificate, or an error that names the files and what is wrong with them.
    public func load() throws -> Certificate {
        struct Failure: Error, CustomStringConvertible { var description: String }
        let names = "rtc.certificate_file \(certificate), rtc.key_file \(key)"
        let certificatePEM: String, keyPEM: String
        do {
            certificatePEM = try String(contentsOfFile: certificate, encoding: .utf8)
            keyPEM = try String(contentsOfFile: key, encoding: .utf8)
        } catch {
            throw Failure(description: "DTLS certificate (\(names)): cannot read: \(error.localizedDescription)")
        }
        do {
            return try Certificate(certificatePEM: certificatePEM, keyPEM: keyPEM)
        } catch {
            throw Failure(description: "DTLS certificate (\(names)): \(error)")
        }
    }
}

/// A stream to push to another RTMP server from the start.
public struct PushEntry: Sendable, Equatable {
    public var stream: StreamKey
    public var url: String
    public init(stream: StreamKey, url: String) { (self.stream, self.url) = (stream, url) }
}
