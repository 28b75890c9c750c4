import AMF0

/// Why an RTMP byte stream or message was rejected. Every case closes the connection it came from.
public enum RTMPError: Error, Equatable, Sendable {
    /// C0 carried a version other than 3 (plain RTMP); includes garbage such as an HTTP request.
    case unsupportedVersion(UInt8)
    /// A Set Chunk Size of 0 or with the reserved top bit set (RTMP 5.4.1), or above our limit.
    case invalidChunkSize(UInt32)
    /// A message longer than the configured per-message limit.
    case messageTooLarge(Int)
    /// More bytes held in partial messages than the per-connection limit.
    case bufferLimitExceeded(Int)
    /// A type 1/2/3 chunk header on a chunk stream that has not had a type 0 header.
    case missingPreviousHeader(chunkStream: UInt32)
    /// More simultaneously open chunk streams than the limit.
    case tooManyChunkStreams
    /// A protocol control or command message whose body does not have the required shape.
    case malformedMessage(String)
    case amf0(AMF0Error)
}
