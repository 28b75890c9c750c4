/// An SDP document (RFC 8866) as lines: the session part, then one ``MediaDescription`` per `m=` line. Only the
/// structure is checked here (each line `x=value` with a one-letter type, `v=0` first, well-formed `m=` lines,
/// a size limit); what the values mean is up to the user (JSEP, RFC 8829, for WebRTC).
public struct SessionDescription: Sendable, Equatable {
    public struct Line: Sendable, Equatable {
        /// The one-letter type: `v`, `o`, `a`, `m`...
        public var type: Character
        public var value: String

        public init(_ type: Character, _ value: String) {
            self.type = type
            self.value = value
        }

        /// For an `a=` line: its name and value (`a=ice-ufrag:abcd` is ("ice-ufrag", "abcd"), a flag such as
        /// `a=ice-lite` is ("ice-lite", nil)).
        public var attribute: (name: Substring, value: Substring?)? {
            guard type == "a" else { return nil }
            guard let colon = value.firstIndex(of: ":") else { return (value[...], nil) }
            return (value[..<colon], value[value.index(after: colon)...])
        }
    }

    public struct MediaDescription: Sendable, Equatable {
        /// `audio`, `video`, `application`...
        public var kind: String
        public var port: Int
        /// `UDP/TLS/RTP/SAVPF`, `UDP/DTLS/SCTP`...
        public var proto: String
        public var formats: [String]
        /// The lines after `m=`, up to the next `m=`.
        public var lines: [Line]

        public init(kind: String, port: Int, proto: String, formats: [String], lines: [Line] = []) {
            (self.kind, self.port, self.proto, self.formats, self.lines) = (kind, port, proto, formats, lines)
        }

        public func attribute(_ name: String) -> String? { lines.attributeValue(name) }
        public func attributes(_ name: String) -> [String] { lines.attributeValues(name) }
        public func hasAttribute(_ name: String) -> Bool { lines.contains { $0.attribute?.name == name[...] } }

        public var mediaLine: String { "\(kind) \(port) \(proto) \(formats.joined(separator: " "))" }
    }

    /// Session-level lines, `v=` first.
    public var session: [Line]
    public var media: [MediaDescription]

    public init(session: [Line], media: [MediaDescription]) {
        self.session = session
        self.media = media
    }

    /// Bounds what the parser takes from the network; a browser offer with many tracks is a few tens of kB.
    public static let maximumSize = 256 * 1024

    public init(parsing text: String) throws(SDPError) {
        guard text.utf8.count <= Self.maximumSize else { throw .tooLarge(text.utf8.count) }
        session = []
        media = []
        var number = 0
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            number += 1
            let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
            if line.isEmpty { continue }
            // RFC 8866 9: a line's text excludes CR, LF and NUL. A bare CR would also be a line break to other
            // parsers, and values (a mid, a ufrag) are written back into answers.
            guard !line.utf8.contains(13), !line.utf8.contains(0) else { throw .malformedLine(number, String(line.prefix(80))) }
            guard line.count >= 2, let type = line.first, type.isASCII, type.isLowercase,
                  line[line.index(after: line.startIndex)] == "=" else {
                throw .malformedLine(number, String(line.prefix(80)))
            }
            let value = String(line.dropFirst(2))
            if session.isEmpty && media.isEmpty {
                guard type == "v", value == "0" else { throw .missingVersion }
            }
            if type == "m" {
                let fields = value.split(separator: " ")
                // `PORT` or `PORT/COUNT`; "/" alone has no port (found by fuzz-sdp: it crashed here, as a WHIP offer).
                guard fields.count >= 3, let port = Int(fields[1].split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)[0]),
                      (0...65535).contains(port) else {
                    throw .malformedMediaLine(number, String(value.prefix(80)))
                }
                media.append(MediaDescription(kind: String(fields[0]), port: port, proto: String(fields[2]),
                                              formats: fields.dropFirst(3).map(String.init)))
            } else if media.isEmpty {
                session.append(Line(type, value))
            } else {
                media[media.count - 1].lines.append(Line(type, value))
            }
        }
        guard !session.isEmpty else { throw .missingVersion }
    }

    public func attribute(_ name: String) -> String? { session.attributeValue(name) }
    public func hasAttribute(_ name: String) -> Bool { session.contains { $0.attribute?.name == name[...] } }

    /// The document with CRLF line ends, as JSEP writes it.
    public var text: String {
        var out = ""
        for l in session { out += "\(l.type)=\(l.value)\r\n" }
        for m in media {
            out += "m=\(m.mediaLine)\r\n"
            for l in m.lines { out += "\(l.type)=\(l.value)\r\n" }
        }
        return out
    }
}

extension [SessionDescription.Line] {
    func attributeValue(_ name: String) -> String? {
        for l in self { if let a = l.attribute, a.name == name[...] { return a.value.map(String.init) ?? "" } }
        return nil
    }

    func attributeValues(_ name: String) -> [String] {
        compactMap { l in l.attribute.flatMap { $0.name == name[...] ? String($0.value ?? "") : nil } }
    }
}

public enum SDPError: Error, Equatable, Sendable, CustomStringConvertible {
    case tooLarge(Int)
    case missingVersion
    case malformedLine(Int, String)
    case malformedMediaLine(Int, String)

    public var description: String {
        switch self {
        case .tooLarge(let n): "SDP of \(n) bytes is larger than \(SessionDescription.maximumSize)"
        case .missingVersion: "SDP must start with v=0"
        case .malformedLine(let n, let l): "SDP line \(n) is not 'x=value': \(l)"
        case .malformedMediaLine(let n, let l): "SDP line \(n) is not 'm=MEDIA PORT PROTO FORMATS': \(l)"
        }
    }
}
