import Foundation

/// An event the server sent: a room event (`room` set; `eid` set when it is part of the room's
/// history) or an event for this connection only.
public struct ReceivedEvent: Sendable, Hashable {
    /// The event's name, e.g. `message.new`.
    public let event: String
    /// The room it was sent to, for room events.
    public let room: String?
    /// Its position in the room's history; `nil` for ephemeral events (`typing.start`,
    /// `presence.join`, `presence.leave`, …).
    public let eid: EventPosition?
    /// Its `data`, as sent (``RawJSON/null`` when absent).
    public let data: RawJSON
    /// Whether it was missed while disconnected and replayed on resume.
    public let replayed: Bool

    /// Creates an event (the client does; apps and tests may too).
    public init(event: String, room: String?, eid: EventPosition?, data: RawJSON, replayed: Bool) {
        self.event = event
        self.room = room
        self.eid = eid
        self.data = data
        self.replayed = replayed
    }

    /// Decodes ``data`` as `type`.
    public func decode<T: Decodable>(_ type: T.Type = T.self, using decoder: JSONDecoder = JSONDecoder()) throws -> T {
        try data.decode(T.self, using: decoder)
    }
}
