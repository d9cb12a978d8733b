/// Decides what clients may do in rooms: asked once per client operation (a join, a publish, a
/// `room.members`), never per recipient of a broadcast.
///
/// A denied operation gets the error reply `forbidden` and does nothing: a client that may not
/// join a room receives none of its events, and a client that may not publish to a room cannot
/// send to it. The server's own publishing (``RoomManager/broadcast(room:event:data:except:)``,
/// ``EventContext/broadcast(to:event:data:includingSelf:)``) and server-side joins are never
/// asked about. An authorizer that throws an ``EventError`` sends that error to the client;
/// any other error is logged and the client gets `unavailable` (it may try again).
///
/// Implement ``authorizeNow(_:room:socket:)`` when the answer needs no waiting (rules in memory,
/// like ``RoomRules``): the message path then does not leave the event loop.
public protocol RoomAuthorizer: Sendable {
    /// Whether `socket` (its verified user and claims are `socket.user`) may do `action` in `room`.
    func authorize(_ action: RoomAction, room: String, socket: Socket) async throws -> Bool

    /// The same answer without suspending, or `nil` when only
    /// ``authorize(_:room:socket:)`` can tell. Called on the socket's event loop: it must not
    /// block. The default answers `nil`.
    func authorizeNow(_ action: RoomAction, room: String, socket: Socket) -> Bool?
}

extension RoomAuthorizer {
    public func authorizeNow(_ action: RoomAction, room: String, socket: Socket) -> Bool? { nil }
}
