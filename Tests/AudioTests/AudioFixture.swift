import Foundation
import TestSupport

extension AACStream {
    struct Missing: Error { let name: String }

    /// A fixture from this target's bundle (Fixtures/README.md).
    static func load(_ name: String) throws -> AACStream {
        guard let url = Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures") else { throw Missing(name: name) }
        return try AACStream(flv: [UInt8](try Data(contentsOf: url)))
    }
}
