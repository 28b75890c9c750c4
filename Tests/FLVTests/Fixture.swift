import Foundation
import TestSupport
import NIOCore

/// Loads the captured ffmpeg FLV (see Fixtures/README.md).
enum Fixture {
    struct Missing: Error { let name: String }

    static func bytes(_ name: String) throws -> [UInt8] {
        guard let url = Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures") else {
            throw Missing(name: name)
        }
        return [UInt8](try Data(contentsOf: url))
    }
}
