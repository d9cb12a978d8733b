import NIOCore

/// Carries events addressed to a user, not to a room, to the other nodes: the seam of
/// ``SwitchboardServer/send(toUser:event:dataJSON:)`` (the HTTP API's `POST /api/notify`).
///
/// The node that sends delivers to its own connections of the user itself; the broker hands the
/// event to every other node, whose ``UserEventReceiver`` delivers it to theirs. Nothing is kept:
/// a user event has no position and is not replayed. ``InMemoryBroker`` conforms for one node
/// (there is no other node to reach); the Redis broker publishes on a channel every node
/// subscribes to. A server whose broker does not conform sends to its own connections only.
public protocol UserEventBroker: Sendable {
    /// Sets the node's receiver of user events from other nodes. Called once, by the server.
    func attachUserEvents(_ receiver: any UserEventReceiver)

    /// Hands `envelope` (the event's JSON text, `{"event","data"}`) for `user` to every other node.
    func publish(toUser user: String, envelope: ByteBuffer, on eventLoop: any EventLoop) -> EventLoopFuture<Void>
}

/// A node's receiver of the user events a ``UserEventBroker`` brings from other nodes.
public protocol UserEventReceiver: AnyObject, Sendable {
    /// Writes `frame` (a complete text frame) to every connection of `user` on this node.
    func deliver(toUser user: String, frame: ByteBuffer)
}

extension InMemoryBroker: UserEventBroker {
    public func attachUserEvents(_ receiver: any UserEventReceiver) {}

    /// One node: no other node to reach.
    public func publish(toUser user: String, envelope: ByteBuffer, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        eventLoop.makeSucceededVoidFuture()
    }
}
