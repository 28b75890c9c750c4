/// Why the MPEG-TS muxer (ISO/IEC 13818-1) rejected a configuration or a sample.
public enum TSError: Error, Equatable, Sendable {
    /// A codec configuration cannot be carried in MPEG-TS / ADTS; the payload says why.
    case invalidConfiguration(String)
    /// A sample is malformed or does not fit the configured streams; the payload says why.
    case invalidFrame(String)
}
