/// A test's own failure with a message, for `throw` where `#require` does not fit.
public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}
