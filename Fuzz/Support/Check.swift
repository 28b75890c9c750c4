/// `precondition` that keeps its message in optimized builds, where libFuzzer runs (a failed `precondition` prints
/// none under `-O`).
public func check(_ condition: Bool, _ message: @autoclosure () -> String = "") {
    if !condition { fatalError(message()) }
}

/// What a codec wrote, parsed again: a written value that does not parse is a finding (`what` names it).
public func reparsed<T>(_ what: String, _ parse: () throws -> T) -> T {
    do { return try parse() } catch { fatalError("\(what) does not parse: \(error)") }
}
