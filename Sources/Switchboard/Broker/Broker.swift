import NIOCore

/// Owns each room's stream of events: its position (`<epoch>:<offset>`, offsets without gaps), its
/// history, and the delivery of every published event to each subscribed node, in position order.
///
/// The server's ``RoomManager`` keeps the local side (which sockets of this node are in which room,
/// and the fan-out to their event loops); the broker is what nodes share. ``InMemoryBroker`` is the
/// embedded default, for one node. A broker on Redis implements the same protocol: a Lua script
/// assigns the position and appends to history in one step, and pub/sub delivers to every node.
///
/// Every method may be called from any thread. Results complete on the event loop passed in, so
/// that code on a connection's loop goes on there without a hop; a broker whose work is local (the
/// in-memory one) returns futures that have already completed.
public protocol Broker: Sendable {
    /// Sets the node's receiver of delivered events. Called once, by the server, before any other
    /// method.
    func attach(_ subscriber: any BrokerSubscriber)

    /// The node has its first local member of `room`. The future completes once every event
    /// published after that moment will be delivered to the subscriber.
    func subscribe(_ room: String, on eventLoop: any EventLoop) -> EventLoopFuture<Void>

    /// The node's last local member of `room` left; its events need not be delivered any more
    /// (the room's history and position stay, for the retention period).
    func unsubscribe(_ room: String)

    /// Publishes an event to its room: a ``Publication/persistent`` one takes the room's next
    /// position and joins its history in the same atomic step, then is delivered to every
    /// subscribed node; an ephemeral one is only delivered. Returns the position (`nil` for an
    /// ephemeral event).
    ///
    /// Publications to one room made one after the other (from one event loop, say) take their
    /// positions in that order, even when the next is made before the previous has completed: a
    /// connection's `message.send`s are published without waiting for each other's answer.
    func publish(_ publication: Publication, on eventLoop: any EventLoop) -> EventLoopFuture<EventID?>

    /// The events of `room` after `position`, at most `limit` of them, or that they cannot be had
    /// (``Recovery/notRecoverable(current:)``). With `position` `nil`, the room's current position and
    /// no events. A room without a stream gets one (a new epoch) so that it has a position to
    /// resume from.
    func recover(_ room: String, after position: EventID?, limit: Int, on eventLoop: any EventLoop) -> EventLoopFuture<Recovery>

    /// The latest events of `room` still in history, oldest first, at most `limit`.
    func latest(_ room: String, limit: Int, on eventLoop: any EventLoop) -> EventLoopFuture<[HistoryEntry]>
}

/// A node's receiver of the events a ``Broker`` delivers.
public protocol BrokerSubscriber: AnyObject, Sendable {
    /// One event of a subscribed room. Called in position order for each room, never twice for
    /// one position, and not concurrently for one room.
    func deliver(_ event: BrokerEvent)

    /// The node may have missed events of `room` that cannot be delivered any more (a broker
    /// across nodes lost its connection, and history no longer has them): the local members must
    /// catch up on their own. The default does nothing; the server's rooms layer closes the room's
    /// local connections with 1013, so that they reconnect and resume.
    func resynchronize(_ room: String)
}

extension BrokerSubscriber {
    public func resynchronize(_ room: String) {}
}
