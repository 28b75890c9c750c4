/// FLV TagType (Adobe FLV spec v10.1, E.4.1); the same numbers are the RTMP message type ids.
public enum TagType: UInt8, Sendable {
    /// Audio data (AUDIODATA, E.4.2).
    case audio = 8
    /// Video data (VIDEODATA, E.4.3).
    case video = 9
    /// AMF0 script data such as onMetaData (E.4.4).
    case script = 18
}
