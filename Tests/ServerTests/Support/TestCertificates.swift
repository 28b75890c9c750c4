import Foundation
import TestSupport

/// A throwaway CA and a server certificate it signed for 127.0.0.1 (an IP SAN), made with the openssl command in a
/// directory of their own: for TURN over TLS, which clients check like any TLS server.
struct TestCertificates {
    let directory: String
    var ca: String { "\(directory)/ca.pem" }
    var chain: String { "\(directory)/chain.pem" }
    var key: String { "\(directory)/key.pem" }

    static func make() throws -> TestCertificates {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("liveswarm-tls-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let steps: [[String]] = [
            ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "\(dir)/ca-key.pem",
             "-out", "\(dir)/ca.pem", "-days", "2", "-subj", "/CN=LiveSwarm test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
            ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "\(dir)/key.pem",
             "-out", "\(dir)/server.csr", "-subj", "/CN=127.0.0.1"],
            ["x509", "-req", "-in", "\(dir)/server.csr", "-CA", "\(dir)/ca.pem", "-CAkey", "\(dir)/ca-key.pem", "-CAcreateserial",
             "-out", "\(dir)/server.pem", "-days", "2", "-extfile", "\(dir)/ext.cnf"],
        ]
        try "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"
            .write(toFile: "\(dir)/ext.cnf", atomically: true, encoding: .utf8)
        for arguments in steps {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            p.arguments = arguments
            p.standardOutput = FileHandle.nullDevice
            let errors = Pipe()
            p.standardError = errors
            try p.run()
            p.waitUntilExit()
            guard p.terminationStatus == 0 else {
                throw TestFailure("openssl \(arguments.joined(separator: " ")): \(String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))")
            }
        }
        // The chain a server presents: its certificate, then the CA's.
        let chain = try String(contentsOfFile: "\(dir)/server.pem", encoding: .utf8) + String(contentsOfFile: "\(dir)/ca.pem", encoding: .utf8)
        try chain.write(toFile: "\(dir)/chain.pem", atomically: true, encoding: .utf8)
        return TestCertificates(directory: dir)
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }
}
