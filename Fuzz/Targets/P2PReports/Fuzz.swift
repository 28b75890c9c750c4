import FuzzSupport
import Foundation
@testable import Server
import StreamHub

/// P2P viewers' reports (`POST /api/v1/p2p/reports`, JSON) as the route reads them, kept by `P2PReports` through
/// time. The input is lines: each a clock step (its first byte, in seconds) and a report. After each: every figure
/// kept is finite and not negative, viewer ids are 1 to 64 bytes, and no stream keeps more viewers than allowed.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let clock = Clock()
    let reports = P2PReports(clock: { clock.now })
    for line in UnsafeBufferPointer(start: data, count: size).split(separator: 0x0A) {
        clock.now += Double(line.first!)
        guard let report = try? JSONDecoder().decode(P2PReports.Report.self, from: Data(line.dropFirst())) else { continue }
        let parts = report.stream.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let key = StreamKey(app: String(parts[0]), stream: String(parts[1])) else { continue }
        try? reports.add(report, key: key)
        let (viewers, departed) = reports.snapshot()
        for (_, list) in viewers {
            check(list.count <= P2PReports.maxViewersPerStream)
            for r in list {
                check(!r.viewer.isEmpty && r.viewer.utf8.count <= 64, "viewer id \(r.viewer.debugDescription)")
                let numbers = [r.delay ?? 0, r.stalledMs, r.firstFrameMs ?? 0, r.originBytes, r.peerBytes, r.uploadedBytes]
                check(numbers.allSatisfy { $0.isFinite && $0 >= 0 } && r.stalls >= 0, "a report kept with \(r)")
            }
        }
        for (_, d) in departed {
            check([d.originBytes, d.peerBytes, d.stalledMs].allSatisfy { $0.isFinite && $0 >= 0 } && d.stalls >= 0 && d.viewers >= 0, "\(d)")
        }
    }
    return 0
}

final class Clock: @unchecked Sendable { var now = 1_800_000_000.0 }
