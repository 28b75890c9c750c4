/// Test-only ISO BMFF box walker (ISO/IEC 14496-12 4.2): reads size and type, descends into the
/// containers this writer produces, and keeps absolute offsets so data_offset can be checked.
struct TestBox {
    var type: String
    /// Offset of the box header from the start of the parsed bytes.
    var offset: Int
    var size: Int
    /// Everything after the 8-byte header (FullBox version and flags included).
    var payload: [UInt8]
    var children: [TestBox]

    /// Boxes whose payload is only boxes, and how many bytes precede the first child.
    static let containers: [String: Int] = [
        "moov": 0, "trak": 0, "mdia": 0, "minf": 0, "dinf": 0, "stbl": 0, "mvex": 0, "moof": 0, "traf": 0,
        "dref": 8, "stsd": 8,              // FullBox header + entry_count
        "avc1": 78, "mp4a": 28,            // VisualSampleEntry / AudioSampleEntry fields
    ]

    var childTypes: [String] { children.map(\.type) }
    var version: UInt8 { payload[0] }
    var flags: UInt32 { UInt32(payload[1]) << 16 | UInt32(payload[2]) << 8 | UInt32(payload[3]) }
    /// Absolute offset of the first payload byte.
    var payloadOffset: Int { offset + 8 }

    func children(_ type: String) -> [TestBox] { children.filter { $0.type == type } }

    /// The first box along a slash-separated path of child types, e.g. "mdia/minf/stbl".
    subscript(path: String) -> TestBox? {
        var box = self
        for part in path.split(separator: "/") {
            guard let next = box.children.first(where: { $0.type == part }) else { return nil }
            box = next
        }
        return box
    }

    func u8(_ at: Int) -> UInt8 { payload[at] }
    func u16(_ at: Int) -> UInt16 { UInt16(payload[at]) << 8 | UInt16(payload[at + 1]) }
    func u32(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 << 8 | UInt32(payload[at + $1]) } }
    func i32(_ at: Int) -> Int32 { Int32(bitPattern: u32(at)) }
    func u64(_ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 << 8 | UInt64(payload[at + $1]) } }
    func fourCC(_ at: Int) -> String { String(decoding: payload[at..<(at + 4)], as: UTF8.self) }
}

enum BoxTestError: Error { case bad(String) }

/// Parses the boxes in `bytes[start..<end]`; a size that does not fit its parent is an error.
func parseBoxes(_ bytes: [UInt8], from start: Int = 0, to end: Int? = nil) throws -> [TestBox] {
    let end = end ?? bytes.count
    var boxes: [TestBox] = []
    var i = start
    while i < end {
        guard i + 8 <= end else { throw BoxTestError.bad("truncated box header at \(i)") }
        let size = (0..<4).reduce(0) { $0 << 8 | Int(bytes[i + $1]) }
        let type = String(decoding: bytes[(i + 4)..<(i + 8)], as: UTF8.self)
        guard size >= 8, i + size <= end else { throw BoxTestError.bad("\(type) at \(i): size \(size) overruns \(end)") }
        var children: [TestBox] = []
        if let skip = TestBox.containers[type] {
            children = try parseBoxes(bytes, from: i + 8 + skip, to: i + size)
        }
        boxes.append(TestBox(type: type, offset: i, size: size, payload: Array(bytes[(i + 8)..<(i + size)]), children: children))
        i += size
    }
    return boxes
}

/// A `trun` entry as read back: every optional field the writer may set.
struct TestRunSample: Equatable {
    var duration: UInt32
    var size: UInt32
    var flags: UInt32
    var compositionOffset: Int32?
}

/// Decodes a trun (ISO/IEC 14496-12 8.8.8) with the flag combinations this writer produces.
func parseTrun(_ trun: TestBox) throws -> (dataOffset: Int32?, samples: [TestRunSample]) {
    let flags = trun.flags
    let count = Int(trun.u32(4))
    var at = 8
    var dataOffset: Int32?
    if flags & 0x1 != 0 { dataOffset = trun.i32(at); at += 4 }
    if flags & 0x4 != 0 { at += 4 }
    var samples: [TestRunSample] = []
    for _ in 0..<count {
        var s = TestRunSample(duration: 0, size: 0, flags: 0, compositionOffset: nil)
        if flags & 0x100 != 0 { s.duration = trun.u32(at); at += 4 }
        if flags & 0x200 != 0 { s.size = trun.u32(at); at += 4 }
        if flags & 0x400 != 0 { s.flags = trun.u32(at); at += 4 }
        if flags & 0x800 != 0 { s.compositionOffset = trun.i32(at); at += 4 }
        samples.append(s)
    }
    guard at == trun.payload.count else { throw BoxTestError.bad("trun has \(trun.payload.count - at) trailing bytes") }
    return (dataOffset, samples)
}

/// An ISO/IEC 14496-1 descriptor (tag, expandable size, body) with its nested descriptors.
struct TestDescriptor {
    var tag: UInt8
    var body: [UInt8]
}

/// Reads consecutive descriptors from `bytes`.
func parseDescriptors(_ bytes: ArraySlice<UInt8>) throws -> [TestDescriptor] {
    var out: [TestDescriptor] = []
    var i = bytes.startIndex
    while i < bytes.endIndex {
        let tag = bytes[i]
        i += 1
        var size = 0
        for n in 0..<4 {
            guard i < bytes.endIndex else { throw BoxTestError.bad("truncated descriptor size") }
            let b = bytes[i]
            i += 1
            size = size << 7 | Int(b & 0x7F)
            if b & 0x80 == 0 { break }
            if n == 3 { throw BoxTestError.bad("descriptor size longer than 4 bytes") }
        }
        guard i + size <= bytes.endIndex else { throw BoxTestError.bad("descriptor \(tag) overruns") }
        out.append(TestDescriptor(tag: tag, body: Array(bytes[i..<(i + size)])))
        i += size
    }
    return out
}
