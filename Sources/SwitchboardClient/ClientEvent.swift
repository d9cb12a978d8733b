/// What ``SwitchboardClient/events`` delivers, in the order it happened.
public enum ClientEvent: Sendable, Hashable {
    /// An event from the server: live, or replayed after a resume (``ReceivedEvent/replayed``).
    /// Each room event with an `eid` arrives once, in `eid` order.
    case event(ReceivedEvent)
    /// The connection state changed.
    case state(ConnectionState)
    /// A room's state is stale and must be replaced (see ``RoomRefresh``).
    case refresh(RoomRefresh)
    /// A room the client was in could not be resumed: the server refused it on reconnect. The
    /// client is no longer in it.
    case roomRefused(room: String, error: SwitchboardClientError)
}
