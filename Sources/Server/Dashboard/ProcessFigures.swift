import Foundation
import CHeap
import Metrics

/// The server process's CPU time and resident memory, read from `/proc/self` (Linux).
struct ProcessFigures: Sendable, Equatable {
    /// User and system CPU seconds since the process started.
    var cpuSeconds: Double
    var residentBytes: Int

    static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
    static let pageSize = sysconf(Int32(_SC_PAGESIZE))

    /// Nil where `/proc` cannot be read.
    static func current() -> ProcessFigures? {
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
              let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        return parse(stat: stat, statm: statm)
    }

    /// `stat`: the command name sits in parentheses and may hold spaces, so fields are counted after the last `)`:
    /// utime and stime are fields 14 and 15 of proc(5), the 12th and 13th after it. `statm`: resident pages second.
    static func parse(stat: String, statm: String) -> ProcessFigures? {
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        let pages = statm.split(separator: " ")
        guard fields.count > 12, pages.count > 1, let user = Double(fields[11]), let system = Double(fields[12]),
              let resident = Int(pages[1]) else { return nil }
        return ProcessFigures(cpuSeconds: (user + system) / ticksPerSecond, residentBytes: resident * pageSize)
    }
}

/// What a long run could leak, read at each scrape of `/metrics` (the soak, docs/RELIABILITY.md, samples it): open
/// file descriptors, threads, and glibc's heap, whose in-use and free bytes tell a leak from fragmentation.
struct ProcessResources {
    var openDescriptors: Int
    var threads: Int
    var heap: ls_heap

    /// Nil where `/proc` cannot be read.
    static func current() -> ProcessResources? {
        guard let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"),
              let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let threads = threads(status: status) else { return nil }
        // The directory listing held a descriptor of its own while it read.
        return ProcessResources(openDescriptors: fds.count - 1, threads: threads, heap: ls_heap_figures())
    }

    /// `Threads:` of proc(5)'s status file.
    static func threads(status: String) -> Int? {
        status.split(separator: "\n").first { $0.hasPrefix("Threads:") }
            .flatMap { Int($0.dropFirst("Threads:".count).trimmingCharacters(in: .whitespaces)) }
    }

    func record(factory: any MetricsFactory) {
        Gauge(label: "process_open_fds", factory: factory).record(openDescriptors)
        Gauge(label: "process_threads", factory: factory).record(threads)
        Gauge(label: "process_heap_bytes", dimensions: [("state", "in_use")], factory: factory).record(heap.in_use)
        Gauge(label: "process_heap_bytes", dimensions: [("state", "free")], factory: factory).record(heap.free)
        Gauge(label: "process_heap_bytes", dimensions: [("state", "from_system")], factory: factory).record(heap.from_system)
    }
}
