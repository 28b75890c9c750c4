import Foundation
import Testing

/// The web root serves its own files and nothing outside it: every way of climbing out of it (`..` plain or
/// percent-encoded, backslashes, a NUL, a symbolic link to a file or folder outside) is a 404, and the outside
/// file's bytes never come back.
@Suite(.serialized, .timeLimit(.minutes(1))) struct WebRootTests {
    /// A web root in a fresh folder, beside a folder with a secret file in it:
    /// `root/index.html`, `root/sub/page.html`, `root/alias.html` (a link to index.html), `root/out.txt` (a link to
    /// the secret), `root/outside` (a link to the secret's folder).
    struct Fixture {
        let base: URL
        var root: String { base.appendingPathComponent("root").path }
        static let secret = "OUTSIDE-THE-WEB-ROOT"

        init() throws {
            base = FileManager.default.temporaryDirectory.appendingPathComponent("webroot-\(UUID().uuidString)")
            let fm = FileManager.default
            let root = base.appendingPathComponent("root"), secrets = base.appendingPathComponent("secrets")
            try fm.createDirectory(at: root.appendingPathComponent("sub"), withIntermediateDirectories: true)
            try fm.createDirectory(at: secrets, withIntermediateDirectories: true)
            try "<p>index</p>".write(to: root.appendingPathComponent("index.html"), atomically: true, encoding: .utf8)
            try "<p>page</p>".write(to: root.appendingPathComponent("sub/page.html"), atomically: true, encoding: .utf8)
            try Self.secret.write(to: secrets.appendingPathComponent("secret.txt"), atomically: true, encoding: .utf8)
            try Self.secret.write(to: base.appendingPathComponent("secret.txt"), atomically: true, encoding: .utf8)
            try fm.createSymbolicLink(atPath: root.appendingPathComponent("alias.html").path, withDestinationPath: "index.html")
            try fm.createSymbolicLink(atPath: root.appendingPathComponent("out.txt").path,
                                      withDestinationPath: secrets.appendingPathComponent("secret.txt").path)
            try fm.createSymbolicLink(atPath: root.appendingPathComponent("outside").path, withDestinationPath: secrets.path)
        }

        func remove() { try? FileManager.default.removeItem(at: base) }
    }

    @Test func servesItsFilesAndNothingOutside() async throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let server = try await TestServer.start { $0.webRoot = fixture.root }
        defer { Task { await server.stop() } }
        for (path, body) in [("/index.html", "<p>index</p>"), ("/", "<p>index</p>"), ("/sub/page.html", "<p>page</p>"),
                             ("/alias.html", "<p>index</p>")] {
            let r = try await HTTPGet.fetch(port: server.ports.http, path)
            #expect(r.status == 200 && r.text == body, "\(path): \(r.status)")
        }
        let climbs = [
            "/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2Fsecret.txt", "/sub/..%2f..%2fsecret.txt",
            "/.%2e/secret.txt", "/sub/%2e%2e/%2e%2e/secret.txt", "/..%5csecret.txt", "/sub\\..\\..\\secret.txt",
            "/%252e%252e/secret.txt", "/index.html%00.png", "/out.txt", "/outside/secret.txt", "/outside/",
            "/" + fixture.base.appendingPathComponent("secret.txt").path, "//etc/passwd",
        ]
        for path in climbs {
            let r = try await HTTPGet.fetch(port: server.ports.http, path)
            #expect(r.status == 404, "\(path): \(r.status)")
            #expect(!r.text.contains(Fixture.secret) && !r.text.contains("root:"), "\(path): the outside file's bytes")
        }
        // The server still serves afterwards.
        #expect(try await HTTPGet.fetch(port: server.ports.http, "/index.html").status == 200)
    }
}
