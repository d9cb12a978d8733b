import Foundation

/// The position of an event in its room's stream: `<epoch>:<offset>` on the wire.
///
/// Offsets increase by one per room event with no gaps. The epoch changes whenever the room's
/// history was lost (for the in-memory broker: when the room was emptied and created again, or the
/// process restarted), so a position from another epoch is never taken as current.
public struct EventID: Hashable, Sendable, CustomStringConvertible {
    public let epoch: String
    public let offset: UInt64

    public init(epoch: String, offset: UInt64) {
        self.epoch = epoch
        self.offset = offset
    }

    /// Parses `<epoch>:<offset>`; `nil` if malformed.
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let offset = UInt64(text[text.index(after: colon)...]) else { return nil }
        let epoch = String(text[..<colon])
        guard !epoch.isEmpty else { return nil }
        self.init(epoch: epoch, offset: offset)
    }

    public var description: String { "\(epoch):\(offset)" }

    /// A new epoch: the time in milliseconds and a random part, in base 36 (`"lq2x8kf3a"`), so
    /// that two streams of one room (before and after its history was lost) never share one.
    public static func newEpoch() -> String {
        let millis = UInt64(Date().timeIntervalSince1970 * 1000)
        return String(millis, radix: 36) + String(UInt32.random(in: 0..<46656), radix: 36)
    }
}
