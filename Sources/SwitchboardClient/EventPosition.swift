/// A room event's id, `<epoch>:<offset>` (protocol 2.4): the position of the event in its room's
/// history. Offsets of one epoch increase by one per event, with no gaps; positions of different
/// epochs cannot be compared.
public struct EventPosition: Hashable, Sendable, CustomStringConvertible {
    /// The room history's epoch: changes only when the history was really lost.
    public let epoch: String
    /// The event's offset within the epoch; a room without events is at offset 0.
    public let offset: Int

    /// Creates a position from its parts.
    public init(epoch: String, offset: Int) {
        self.epoch = epoch
        self.offset = offset
    }

    /// Parses `<epoch>:<offset>`; `nil` for anything else (an empty or non-alphanumeric epoch, a
    /// negative or non-decimal offset).
    public init?(_ text: some StringProtocol) {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        let epoch = text[text.startIndex..<colon]
        let digits = text[text.index(after: colon)...]
        guard !epoch.isEmpty, epoch.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else { return nil }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let offset = Int(digits) else { return nil }
        self.epoch = String(epoch)
        self.offset = offset
    }

    /// `<epoch>:<offset>`, as on the wire.
    public var description: String { "\(epoch):\(offset)" }
}
