import NIOCore

/// The ordered key/value properties of an AMF0 object or ECMA array (AMF0 sections 2.5 and 2.10).
///
/// Order is kept because some players read `onMetaData` in the order the encoder wrote it.
public struct AMF0Object: Sendable, Equatable, ExpressibleByDictionaryLiteral {
    public struct Entry: Sendable, Equatable {
        public var key: String
        public var value: AMF0Value
        public init(key: String, value: AMF0Value) {
            self.key = key
            self.value = value
        }
    }

    public var entries: [Entry]

    public init(_ entries: [Entry] = []) { self.entries = entries }

    public init(dictionaryLiteral elements: (String, AMF0Value)...) {
        self.entries = elements.map { Entry(key: $0.0, value: $0.1) }
    }

    /// The first value stored under `key`; setting replaces it or appends a new entry.
    public subscript(key: String) -> AMF0Value? {
        get { entries.first(where: { $0.key == key })?.value }
        set {
            if let i = entries.firstIndex(where: { $0.key == key }) {
                if let newValue { entries[i].value = newValue } else { entries.remove(at: i) }
            } else if let newValue {
                entries.append(Entry(key: key, value: newValue))
            }
        }
    }

    /// Reads properties up to and including the empty-key object-end marker (00 00 09).
    init(parsingProperties buffer: inout ByteBuffer, depth: Int) throws(AMF0Error) {
        guard depth <= AMF0Value.maxDepth else { throw .nestingTooDeep }
        var entries: [Entry] = []
        while true {
            let key = try AMF0Value.readString(&buffer, long: false)
            if key.isEmpty {
                guard let marker = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else {
                    throw .truncated("object end")
                }
                if marker == AMF0Value.Marker.objectEnd.rawValue {
                    buffer.moveReaderIndex(forwardBy: 1)
                    break
                }
            }
            entries.append(Entry(key: key, value: try AMF0Value(parsing: &buffer, depth: depth)))
        }
        self.entries = entries
    }

    func writeProperties(to buffer: inout ByteBuffer) {
        for e in entries {
            buffer.writeInteger(UInt16(truncatingIfNeeded: e.key.utf8.count))
            buffer.writeBytes(e.key.utf8.prefix(Int(UInt16.max)))
            e.value.write(to: &buffer)
        }
        buffer.writeBytes([0, 0, AMF0Value.Marker.objectEnd.rawValue])
    }
}
