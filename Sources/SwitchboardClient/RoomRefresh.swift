/// The client's state of a room is stale: the server could not prove continuity on resume
/// (`recovered: false`, `state.refresh`) or the room's history has a new epoch. The app replaces
/// its state of the room with ``snapshot`` or, when there is none, reloads it its own way. Events
/// after ``eid`` follow.
public struct RoomRefresh: Sendable, Hashable {
    /// The room.
    public let room: String
    /// The room's position from which events follow.
    public let eid: EventPosition?
    /// The server's snapshot of the room (its shape is the app's; the standalone server sends
    /// `{"events":[…]}`), `nil` when there is none.
    public let snapshot: RawJSON?

    /// Creates a refresh.
    public init(room: String, eid: EventPosition?, snapshot: RawJSON?) {
        self.room = room
        self.eid = eid
        self.snapshot = snapshot
    }
}
