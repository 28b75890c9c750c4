import Foundation
import Hummingbird
import Logging
import NIOPosix

/// The web root's files, confined to it: a path whose file, once its symbolic links are followed, lies outside the
/// root is not found, as if it did not exist (a link inside the root to a file inside it still works).
/// Hummingbird's `LocalFileSystem` does the reading.
struct ConfinedFileSystem: FileProvider {
    typealias FileAttributes = LocalFileSystem.FileAttributes
    typealias FileIdentifier = String

    let base: LocalFileSystem
    /// The root with every link in it followed, and no slash at the end.
    let root: String

    init(rootFolder: String, logger: Logger) {
        base = LocalFileSystem(rootFolder: rootFolder, threadPool: .singleton, logger: logger)
        root = Self.resolved(rootFolder) ?? rootFolder
    }

    /// The path with its links followed (realpath(3)); nil when it does not exist.
    static func resolved(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    /// The file's real path if it lies inside the root, else nil.
    func confined(_ path: String) -> String? {
        guard let real = Self.resolved(path), real == root || real.hasPrefix(root + "/") else { return nil }
        return real
    }

    /// The file's real path (links followed once, here), nil when it does not exist or lies outside the root: the
    /// identifier the attributes and the bytes are read by.
    func getFileIdentifier(_ path: String) -> String? {
        guard !path.contains("\0") else { return nil }
        return base.getFileIdentifier(path).flatMap(confined)
    }

    func getAttributes(id: String) async throws -> FileAttributes? {
        try await base.getAttributes(id: id)
    }

    func loadFile(id: String, context: some RequestContext) async throws -> ResponseBody {
        try await base.loadFile(id: id, context: context)
    }

    func loadFile(id: String, range: ClosedRange<Int>, context: some RequestContext) async throws -> ResponseBody {
        try await base.loadFile(id: id, range: range, context: context)
    }
}

/// Serves the web root's files for GET and HEAD requests that no route answered (a route's 404 comes first, so
/// API and media paths win). A path that tries to climb out of the root (a `..` segment, however it is encoded,
/// a backslash, a NUL) is not found: the route's 404 stands, where Hummingbird's file middleware would answer 400.
struct WebRootMiddleware<Context: RequestContext>: RouterMiddleware {
    let files: FileMiddleware<Context, ConfinedFileSystem>

    init(root: String, logger: Logger) {
        files = FileMiddleware(fileProvider: ConfinedFileSystem(rootFolder: root, logger: logger), searchForIndexHtml: true)
    }

    /// Whether `path` (as requested, percent-encoded) stays inside the root once decoded.
    static func staysInside(_ path: String) -> Bool {
        guard let decoded = path.removingPercentEncoding else { return false }
        if decoded.contains("\0") || decoded.contains("\\") { return false }
        return !decoded.split(separator: "/", omittingEmptySubsequences: false).contains("..")
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as any HTTPResponseError where error.status == .notFound {
            guard request.method == .get || request.method == .head, Self.staysInside(request.uri.path) else { throw error }
            return try await files.handle(request, context: context) { _, _ in throw error }
        }
    }
}
