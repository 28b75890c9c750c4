/// Test-only FLV tag reader (header 9 bytes + PreviousTagSize0, then tags).
public struct FLVTestTag: Sendable {
    public var type: UInt8
    public var timestamp: Int64
    public var body: [UInt8]
}

public func readFLVTags(_ data: [UInt8]) throws -> [FLVTestTag] {
    guard data.count >= 13, data[0] == 0x46, data[1] == 0x4C, data[2] == 0x56 else { throw FLVTestError.bad("header") }
    let headerSize = Int(data[5]) << 24 | Int(data[6]) << 16 | Int(data[7]) << 8 | Int(data[8])
    var i = headerSize + 4
    var tags: [FLVTestTag] = []
    while i + 11 <= data.count {
        let type = data[i] & 0x1F
        let size = Int(data[i + 1]) << 16 | Int(data[i + 2]) << 8 | Int(data[i + 3])
        let ts = Int64(data[i + 7]) << 24 | Int64(data[i + 4]) << 16 | Int64(data[i + 5]) << 8 | Int64(data[i + 6])
        guard i + 11 + size + 4 <= data.count else { throw FLVTestError.bad("truncated tag at \(i)") }
        tags.append(FLVTestTag(type: type, timestamp: ts, body: Array(data[(i + 11)..<(i + 11 + size)])))
        i += 11 + size + 4
    }
    return tags
}

public enum FLVTestError: Error { case bad(String) }
