/// Why a rules document for ``RoomRules`` was refused: what is wrong and where, e.g.
/// `namespaces[2].pattern: "*" may only end a pattern`.
public struct RoomRulesError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
