/// What a client asks to do in a room, for a ``RoomAuthorizer``.
public enum RoomAction: String, Sendable, Hashable, CaseIterable {
    /// Joining the room, and so receiving its events: `room.join`, a room in `session.hello`'s
    /// `resume`, and the rooms joined on connect (the token's rooms claim, the membership store).
    case join
    /// Publishing to the room: the standalone server's `message.send` and `typing.start`, and any
    /// app handler that asks ``EventContext/authorize(_:room:)``.
    case publish
    /// Seeing who is in the room: `room.members`, and the `members` of the `room.join` ack (empty
    /// when denied).
    case presence
}
