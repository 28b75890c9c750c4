import Foundation

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
