import Foundation
import NIOCore
import TestSupport

/// One HTTP/1.1 request (GET unless told) over a fresh loopback connection, read to the end (Connection: close).
struct HTTPGet {
    var status: Int
    var headers: [String: String]
    var body: Data

    static func fetch(port: Int, _ path: String, method: String = "GET", headers extra: [String: String] = [:],
                      body: String? = nil) async throws -> HTTPGet {
        let tcp = try await TCPTestClient.connect(port: port)
        var request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        for (k, v) in extra { request += "\(k): \(v)\r\n" }
        if let body { request += "Content-Length: \(body.utf8.count)\r\n" }
        try await tcp.send(request + "\r\n" + (body ?? ""))
        var all = ByteBuffer()
        while var b = await tcp.receive(timeout: .seconds(5)) { all.writeBuffer(&b) }
        await tcp.close()
        let bytes = Array(all.readableBytesView)
        guard let split = (0..<max(0, bytes.count - 3)).first(where: { bytes[$0..<($0 + 4)] == [13, 10, 13, 10] }) else {
            throw TestFailure("no HTTP header in \(bytes.count) bytes")
        }
        let lines = String(decoding: bytes[..<split], as: UTF8.self).components(separatedBy: "\r\n")
        var headers: [String: String] = [:]
        for l in lines.dropFirst() {
            // A header sent several times (Link) reads as one, its values joined with ", " (RFC 9110 5.3).
            if let c = l.firstIndex(of: ":") {
                let name = l[..<c].lowercased(), value = l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)
                headers[name] = headers[name].map { "\($0), \(value)" } ?? value
            }
        }
        var body = Array(bytes[(split + 4)...])
        if headers["transfer-encoding"] == "chunked" {
            var out: [UInt8] = []
            var i = 0
            while let lineEnd = (i..<max(i, body.count - 1)).first(where: { body[$0] == 13 && body[$0 + 1] == 10 }),
                  let size = Int(String(decoding: body[i..<lineEnd], as: UTF8.self), radix: 16), size > 0 {
                out += body[(lineEnd + 2)..<(lineEnd + 2 + size)]
                i = lineEnd + 2 + size + 2
            }
            body = out
        }
        let status = Int(lines[0].split(separator: " ")[1]) ?? 0
        return HTTPGet(status: status, headers: headers, body: Data(body))
    }

    var text: String { String(decoding: body, as: UTF8.self) }
}
