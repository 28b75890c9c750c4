import Foundation
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
