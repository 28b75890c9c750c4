import Foundation

/// An AAC stream read from an FLV file (the audio fixtures, Tests/AudioTests/Fixtures): its AudioSpecificConfig and
/// raw access units with their timestamps (ms).
public struct AACStream: Sendable {
    public var config: [UInt8]
    public var accessUnits: [(timestamp: Int64, bytes: [UInt8])]

    public init(config: [UInt8], accessUnits: [(timestamp: Int64, bytes: [UInt8])]) {
        (self.config, self.accessUnits) = (config, accessUnits)
    }

    public init(flv: [UInt8]) throws {
        config = []
        accessUnits = []
        for tag in try readFLVTags(flv) where tag.type == 8 && tag.body.count > 2 && tag.body[0] >> 4 == 10 {
            if tag.body[1] == 0 { config = Array(tag.body[2...]) } else { accessUnits.append((tag.timestamp, Array(tag.body[2...]))) }
        }
    }

    /// A fixture from the checkout, for tests outside AudioTests.
    public static func fixture(_ name: String, file: String = #filePath) throws -> AACStream {
        var dir = URL(fileURLWithPath: file).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path), dir.path != "/" {
            dir.deleteLastPathComponent()
        }
        return try AACStream(flv: [UInt8](try Data(contentsOf: dir.appendingPathComponent("Tests/AudioTests/Fixtures/\(name)"))))
    }
}
