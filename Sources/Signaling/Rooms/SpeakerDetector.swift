/// A room's active speaker, found from its participants' audio levels (RFC 6464, as the publishers' packets carry
/// them), one window at a time: no I/O, no clock of its own.
///
/// A window's mean level at or under ``Configuration/speechLevel`` is speech. The loudest speaker of a window becomes
/// the active speaker once it has been the loudest for ``Configuration/confirmWindows`` windows in a row (a cough
/// does not take the floor); after ``Configuration/silenceWindows`` windows without speech there is none. Changes
/// are at least ``Configuration/minInterval`` apart, so a room hears of them at most a few times a second.
public struct SpeakerDetector: Sendable, Equatable {
    public struct Configuration: Sendable, Equatable {
        /// -50 dBov or louder. A silent microphone sends 127; a voice at a normal distance is around 20-40.
        public var speechLevel: Double = 50
        public var confirmWindows = 2
        public var silenceWindows = 5
        /// Seconds: at most 3 changes a second.
        public var minInterval: Double = 1.0 / 3
        public init() {}
    }

    public let configuration: Configuration
    public private(set) var speaker: String?
    var candidate: String?
    var candidateWindows = 0
    var silentWindows = 0
    var lastChange = -Double.infinity

    public init(configuration: Configuration = Configuration()) { self.configuration = configuration }

    /// One window's mean level per participant (those that sent audio). Returns the new speaker when it changes:
    /// `.some(nil)` when nobody speaks any more, nil when nothing changed.
    public mutating func window(_ levels: [String: Double], now: Double) -> String?? {
        let loudest = levels.filter { $0.value <= configuration.speechLevel }
            .min { a, b in a.value < b.value || (a.value == b.value && a.key < b.key) }?.key
        guard let loudest else {
            silentWindows += 1
            (candidate, candidateWindows) = (nil, 0)
            guard speaker != nil, silentWindows >= configuration.silenceWindows, now - lastChange >= configuration.minInterval else { return nil }
            speaker = nil
            lastChange = now
            return .some(nil)
        }
        silentWindows = 0
        if loudest == speaker {
            (candidate, candidateWindows) = (nil, 0)
            return nil
        }
        if loudest == candidate { candidateWindows += 1 } else { (candidate, candidateWindows) = (loudest, 1) }
        guard candidateWindows >= configuration.confirmWindows, now - lastChange >= configuration.minInterval else { return nil }
        speaker = loudest
        (candidate, candidateWindows) = (nil, 0)
        lastChange = now
        return .some(loudest)
    }
}
