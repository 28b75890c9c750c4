import Foundation
import STUN
import Testing
import TestSupport

/// A UDP receive buffer overflowing (issue 23): the binary stopped for a second while 24 MB of datagrams are thrown
/// at its media and STUN ports, far past their receive buffers (4 MiB), so that the kernel drops what does not fit.
/// Once it runs again, the WHEP and HTTP-FLV viewers of the stream keep getting media, STUN is answered, and
/// nothing is left behind.
extension CommandLineTests {
    @Test func aUDPReceiveBufferOverflowsAndTheViewersGoOn() async throws {
        let (t, http, rtmp) = try await start(["--no-rate-limits"])
        defer { t.kill() }
        let pid = t.process.processIdentifier
        let (media, stun) = try Self.mediaAndSTUNPorts(t)
        let publisher = try Tool.publisher(url: "rtmp://127.0.0.1:\(rtmp)/live/flood", seconds: 60, gop: 15, size: "320x240", fps: 15)
        defer { publisher.kill() }
        try await TestServer.waitUntil("the stream", timeout: .seconds(20)) {
            (try? await HTTPGet.fetch(port: http, "/api/v1/streams").text.contains("\"published\":true")) == true
        }
        let whep = try await SFUForwardingTests.connect(http: http, media: media, path: "/whep/live/flood", offer: WHIPTests.playOffer)
        defer { whep.link.close() }
        let flv = try await FLVTestClient.open(port: http, path: "/live/flood.flv")
        let flvReading = flv.readInBackground()
        defer { flvReading.cancel() }
        #expect(try await Self.rtp(whep, atLeast: 20, within: .seconds(10)), "the WHEP viewer gets media before the flood")
        let baseline = Self.descriptors(pid: pid)

        kill(pid, SIGSTOP)
        // What the server sent before it stopped is read and set aside: what counts below came after the flood.
        try await Task.sleep(for: .milliseconds(300))
        while await whep.link.receive(timeout: .milliseconds(50)) != nil {}
        let tags = flv.tags.count
        let before = Self.receiveDrops(ports: [media, stun])
        var thrown = 0, dropped = 0
        // Thrown again if the kernel has not dropped yet (on a loaded machine the first round may still fit).
        for _ in 0..<3 where dropped == 0 {
            thrown += Self.flood(ports: [media, stun], datagrams: 10_000, size: 1200)
            try await Task.sleep(for: .seconds(1))
            dropped = Self.receiveDrops(ports: [media, stun]) - before
        }
        kill(pid, SIGCONT)
        print("UDP flood: \(thrown) datagrams thrown at the stopped server, the kernel dropped \(dropped) at its ports")
        #expect(dropped > 0, "the receive buffers overflowed")

        // The viewers go on: the WHEP viewer gets RTP again and the FLV viewer frames, STUN is answered.
        #expect(try await Self.rtp(whep, atLeast: 50, within: .seconds(15)), "the WHEP viewer gets media after the flood")
        try await TestServer.waitUntil("the FLV viewer's frames", timeout: .seconds(10)) { flv.tags.count >= tags + 15 }
        let stunClient = try await UDPTestClient.open()
        defer { stunClient.close() }
        try await stunClient.send(Message(type: .bindingRequest, transactionID: (0..<12).map { _ in .random(in: 0...255) }).encode(), to: stun)
        #expect(await stunClient.receive(timeout: .seconds(3)) != nil, "STUN answers after the flood")
        #expect(Self.descriptors(pid: pid) == baseline, "descriptors: \(baseline) before, \(Self.descriptors(pid: pid)) after")
        #expect(t.isRunning)
        await flv.close()
    }

    /// Reads from a WHEP viewer until `count` RTP packets came (RTCP, DTLS and STUN skipped).
    static func rtp(_ peer: SFUForwardingTests.Peer, atLeast count: Int, within timeout: Duration) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        var got = 0
        while got < count, ContinuousClock.now < deadline {
            guard let (_, rtcp) = try await peer.receive(timeout: deadline - ContinuousClock.now) else { break }
            if !rtcp { got += 1 }
        }
        return got >= count
    }

    /// `datagrams` of junk (RTP-looking, from an address no session has) to each port, from a plain socket as fast as
    /// it sends; returns how many were sent.
    static func flood(ports: [Int], datagrams: Int, size: Int) -> Int {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var junk = [UInt8](repeating: 0x5A, count: size)
        junk[0] = 0x80
        var sent = 0
        for port in ports {
            var to = sockaddr_in()
            to.sin_family = sa_family_t(AF_INET)
            to.sin_addr.s_addr = inet_addr("127.0.0.1")
            to.sin_port = UInt16(port).bigEndian
            for _ in 0..<datagrams {
                let n = withUnsafePointer(to: &to) { p in
                    p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, junk, junk.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
                if n > 0 { sent += 1 }
            }
        }
        return sent
    }

    /// What the kernel dropped at these UDP ports for want of receive buffer (`drops`, the last column of
    /// /proc/net/udp and udp6; local addresses are hex, the port after the colon).
    static func receiveDrops(ports: [Int]) -> Int {
        let table = ["/proc/net/udp", "/proc/net/udp6"].compactMap { try? String(contentsOfFile: $0, encoding: .utf8) }
            .flatMap { $0.split(separator: "\n").dropFirst() }
        let wanted = Set(ports.map { String(format: "%04X", $0) })
        return table.reduce(0) { total, line in
            let fields = line.split(separator: " ")
            guard fields.count > 12, let port = fields[1].split(separator: ":").last, wanted.contains(String(port)),
                  let drops = Int(fields[fields.count - 1]) else { return total }
            return total + drops
        }
    }
}
