import STUN

/// What a STUN server here makes of a message before looking at its credentials (RFC 8489 6.3), the same for
/// the STUN server and the media port's ICE-lite agent.
enum BindingScreening {
    /// A Binding request to answer.
    case request(Message)
    /// Not answered: not STUN, not a request (indications are keepalives, responses answer nothing we sent), or
    /// a FINGERPRINT that does not check (it may not be STUN at all).
    case drop(String)
    /// Answered with an error: unknown comprehension-required attributes (420, naming them), or another method
    /// (400: only Binding is served).
    case reject(Message, ErrorCode, unknown: [AttributeType])

    init(_ bytes: [UInt8]) {
        let request: Message
        do {
            request = try Message(parsing: bytes)
        } catch {
            self = .drop("not a STUN message: \(error)")
            return
        }
        guard request.type.messageClass == .request else {
            self = .drop("\(request.type): not a request")
            return
        }
        if request.fingerprintIsValid == false {
            self = .drop("bad FINGERPRINT")
            return
        }
        let unknown = request.unknownComprehensionRequired
        if !unknown.isEmpty {
            self = .reject(request, .unknownAttribute, unknown: unknown)
        } else if request.type.method != .binding {
            self = .reject(request, .badRequest, unknown: [])
        } else {
            self = .request(request)
        }
    }
}
