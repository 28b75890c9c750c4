/// `precondition` that keeps its message in optimized builds, where libFuzzer runs (a failed `precondition` prints
/// none under `-O`).
public func check(_ condition: Bool, _ message: @autoclosure () -> String = "") {
    if !condition { fatalError(message()) }
}
