import Foundation
import NIOCore

/// Loads captured bytes from the bundled Fixtures directory (see Fixtures/README.md).
enum Fixture {
    struct Missing: Error { let name: String }

    static func bytes(_ name: String) throws -> [UInt8] {
        guard let url = Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures") else {
            throw Missing(name: name)
        }
        return [UInt8](try Data(contentsOf: url))
    }

    static func buffer(_ name: String) throws -> ByteBuffer {
        ByteBuffer(bytes: try bytes(name))
    }
}

/// Hex helpers keep synthetic vectors readable next to the bit layouts they encode.
extension Array where Element == UInt8 {
    init(hex: String) {
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            bytes.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        self = bytes
    }
}

extension ByteBuffer {
    init(hex: String) {
        self.init(bytes: [UInt8](hex: hex))
    }
}
