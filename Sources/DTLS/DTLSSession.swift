import CDTLS

/// One DTLS association for DTLS-SRTP (RFC 5764, RFC 8827), without I/O: datagrams from the peer go in, datagrams
/// to send and events come out, and the caller runs the retransmission timer (``timeout``). OpenSSL does the
/// protocol on memory buffers; no `DTLSv1_listen` (it refuses Chromium's fragmented ClientHello, and ICE has
/// already checked the peer's address).
///
/// When the handshake completes, the peer's certificate must have the fingerprint its SDP gave, and an SRTP
/// profile must have been negotiated; otherwise the session fails and says why. Not thread-safe: one event loop
/// owns it.
public final class DTLSSession {
    public enum Role: Sendable, Equatable {
        /// `a=setup:passive` in our SDP: wait for the ClientHello. What an SFU answering browsers does.
        case server
        /// `a=setup:active`: send the ClientHello.
        case client
    }

    public enum State: Sendable, Equatable {
        case handshaking
        case connected(SRTPKeys)
        case failed(DTLSError)
        case closed
    }

    /// What one step produced.
    public struct Output: Sendable {
        /// Datagrams to send to the peer, in order.
        public var datagrams: [[UInt8]] = []
        /// Application data (SCTP for DataChannels, later).
        public var data: [[UInt8]] = []
        /// Set on the step that changed the state.
        public var stateChanged: State?
    }

    public let role: Role
    public let expectedFingerprint: Fingerprint
    public private(set) var state: State = .handshaking
    /// "DTLSv1.2" and the cipher suite, once connected.
    public private(set) var version = ""
    public private(set) var cipher = ""
    let certificate: Certificate
    let handle: OpaquePointer
    var scratch = [UInt8](repeating: 0, count: 65536)

    /// `mtu` bounds each datagram OpenSSL writes (the handshake's certificate flight is split to fit).
    /// `srtpProfiles` narrows what `use_srtp` offers or accepts (a load generator holding a server to one cipher).
    public init(certificate: Certificate, role: Role, peerFingerprint: Fingerprint, mtu: Int = 1200,
                srtpProfiles: [SRTPProfile] = SRTPProfile.allCases) throws(DTLSError) {
        guard let h = ls_dtls_new(certificate.context, role == .server ? 1 : 0, Int32(mtu)) else { throw .outOfMemory }
        if srtpProfiles != SRTPProfile.allCases {
            let names = srtpProfiles.map { $0 == .aeadAes128Gcm ? "SRTP_AEAD_AES_128_GCM" : "SRTP_AES128_CM_SHA1_80" }
            guard !names.isEmpty, ls_dtls_set_srtp_profiles(h, names.joined(separator: ":")) == 1 else {
                ls_dtls_free(h)
                throw .handshake("OpenSSL refused the SRTP profiles \(names)")
            }
        }
        self.certificate = certificate
        self.role = role
        self.expectedFingerprint = peerFingerprint
        self.handle = h
    }

    deinit { ls_dtls_free(handle) }

    /// A client's first flight (the ClientHello); nothing for a server.
    public func start() -> Output {
        var out = Output()
        guard role == .client, state == .handshaking else { return out }
        step(&out)
        return out
    }

    /// One datagram from the peer (its first byte said DTLS, RFC 7983).
    public func receive(_ datagram: [UInt8]) -> Output {
        var out = Output()
        switch state {
        case .failed, .closed:
            return out
        case .handshaking:
            _ = datagram.withUnsafeBufferPointer { ls_dtls_receive(handle, $0.baseAddress, $0.count) }
            step(&out)
            if case .connected = state { readData(&out) }  // records that came with the last flight
        case .connected:
            _ = datagram.withUnsafeBufferPointer { ls_dtls_receive(handle, $0.baseAddress, $0.count) }
            readData(&out)
        }
        drain(&out)
        return out
    }

    /// Time until ``handleTimeout()`` must be called; nil when no timer runs (connected, or waiting for a
    /// ClientHello).
    public var timeout: Duration? {
        guard state == .handshaking else { return nil }
        let ms = ls_dtls_timeout_ms(handle)
        return ms < 0 ? nil : .milliseconds(ms)
    }

    /// Retransmits the last flight when the timer ran out; fails the session once OpenSSL gives up.
    public func handleTimeout() -> Output {
        var out = Output()
        guard state == .handshaking else { return out }
        if Int(ls_dtls_handle_timeout(handle)) == LS_DTLS_FAILED {
            change(.failed(.timedOut), &out)
        }
        drain(&out)
        return out
    }

    /// Application data to the peer (once connected).
    public func send(_ data: [UInt8]) -> Output {
        var out = Output()
        guard case .connected = state else { return out }
        _ = data.withUnsafeBufferPointer { ls_dtls_write(handle, $0.baseAddress, $0.count) }
        drain(&out)
        return out
    }

    /// Sends close_notify and ends the session.
    public func close() -> Output {
        var out = Output()
        guard state != .closed else { return out }
        ls_dtls_shutdown(handle)
        change(.closed, &out)
        drain(&out)
        return out
    }

    // MARK: -

    func step(_ out: inout Output) {
        switch Int(ls_dtls_handshake(handle)) {
        case LS_DTLS_CONNECTED:
            change(connectedState(), &out)
        case LS_DTLS_FAILED:
            change(.failed(.handshake(String(cString: ls_dtls_error(handle)))), &out)
        default:
            break
        }
        drain(&out)
    }

    /// The handshake is done: check the peer and take the SRTP keys.
    func connectedState() -> State {
        version = String(cString: ls_dtls_version(handle))
        cipher = String(cString: ls_dtls_cipher(handle))
        var digest = [UInt8](repeating: 0, count: 32)
        let got = ls_dtls_peer_fingerprint(handle, &digest) == 1 ? Fingerprint(bytes: digest) : nil
        guard got == expectedFingerprint else {
            ls_dtls_shutdown(handle)
            return .failed(.fingerprintMismatch(expected: expectedFingerprint, got: got))
        }
        guard let profile = SRTPProfile(rawValue: UInt16(truncatingIfNeeded: ls_dtls_srtp_profile(handle))) else {
            ls_dtls_shutdown(handle)
            return .failed(.noSRTPProfile)
        }
        var material = [UInt8](repeating: 0, count: 2 * (profile.keyLength + profile.saltLength))
        guard ls_dtls_srtp_keying_material(handle, &material, material.count) == 1 else {
            ls_dtls_shutdown(handle)
            return .failed(.handshake("exporting the SRTP keys failed"))
        }
        return .connected(SRTPKeys(profile: profile, material: material, isServer: role == .server))
    }

    func readData(_ out: inout Output) {
        while case .connected = state {
            let n = Int(scratch.withUnsafeMutableBufferPointer { ls_dtls_read(handle, $0.baseAddress, $0.count) })
            if n > 0 {
                out.data.append(Array(scratch[0..<n]))
            } else if n == LS_DTLS_CLOSED {
                change(.closed, &out)
            } else if n == LS_DTLS_FAILED {
                change(.failed(.handshake(String(cString: ls_dtls_error(handle)))), &out)
            } else {
                return
            }
        }
    }

    func drain(_ out: inout Output) {
        while true {
            let n = scratch.withUnsafeMutableBufferPointer { ls_dtls_next_datagram(handle, $0.baseAddress, $0.count) }
            guard n > 0 else { return }
            out.datagrams.append(Array(scratch[0..<Int(n)]))
        }
    }

    func change(_ new: State, _ out: inout Output) {
        state = new
        out.stateChanged = new
    }
}
