import STUN

/// What the STUN server answers (RFC 8489 section 6.3), with no I/O: a Binding request gets a success response
/// carrying the source address it came from as XOR-MAPPED-ADDRESS.
///
/// - a request whose FINGERPRINT does not check is dropped silently (it may not be STUN at all);
/// - a request with comprehension-required attributes it does not know gets a 420 naming them;
/// - requests of other methods get a 400 until TURN exists (RFC 8489 6.3.1 lets a server reject them);
/// - indications and responses are dropped: a server sends nothing back for them.
///
/// Responses carry a FINGERPRINT when the request did, as ICE peers expect, and SOFTWARE.
public struct BindingResponder: Sendable {
    public let software: String
    /// SOFTWARE as written on the wire (type, length, value, padding), for the fast path.
    let softwareAttribute: [UInt8]

    public init(software: String = "LiveSwarm") {
        self.software = software
        let value = Array(software.utf8.prefix(763))
        var attribute: [UInt8] = [0x80, 0x22, UInt8(value.count >> 8), UInt8(value.count & 0xFF)] + value
        attribute += [UInt8](repeating: 0, count: (4 - value.count % 4) % 4)
        softwareAttribute = attribute
    }

    public enum Outcome: Equatable, Sendable {
        case reply([UInt8])
        /// Not answered, and why (for counters and debug logs).
        case drop(String)
    }

    public func respond(to bytes: [UInt8], from source: Address) -> Outcome {
        let request: Message, response: Message
        switch BindingScreening(bytes) {
        case .drop(let why):
            return .drop(why)
        case .reject(let r, let code, let unknown):
            (request, response) = (r, r.errorResponse(code, unknown: unknown))
        case .request(let r):
            (request, response) = (r, r.bindingSuccess(mapped: source))
        }
        return .reply(response.adding(.software, Array(software.utf8)).encode(fingerprint: request.hasFingerprint))
    }
}
