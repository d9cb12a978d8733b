import Logging

/// What a handler knows about the message it handles: the socket and user it came from, the
/// client's envelope id, and the server's rooms.
public struct EventContext: Sendable {
    /// The connection the message arrived on.
    public let socket: Socket
    /// The server, for its ``SwitchboardServer/rooms`` and configuration.
    public let switchboard: SwitchboardServer
    /// The client's envelope `id`, echoed in the ack or error reply.
    public let id: String?

    /// The authenticated user of the socket.
    public var user: AuthenticatedUser { socket.user }
    /// The server's rooms.
    public var rooms: RoomManager { switchboard.rooms }
    /// The server's logger, with this socket's id and user as metadata.
    public var logger: Logger {
        var logger = switchboard.logger
        logger[metadataKey: "socket"] = "\(socket.id)"
        logger[metadataKey: "user"] = "\(socket.user.id)"
        return logger
    }

    /// Sends an event to this socket only.
    public func send<Data: Encodable>(event: String, data: Data) throws {
        try socket.send(event: event, data: data)
    }

    /// Throws `forbidden` unless the server's ``RoomAuthorizer`` lets this socket do `action` in
    /// `room` (without one, everything is allowed). For app handlers that act on a room for the
    /// client, so that they follow the same rules as the built-in events: call it before
    /// ``broadcast(to:event:data:includingSelf:)`` with ``RoomAction/publish``, say.
    public func authorize(_ action: RoomAction, room: String) async throws {
        try await switchboard.checkPermission(action, room: room, socket: socket).get()
    }

    /// Broadcasts to `room` and keeps the event in its history, leaving out this socket unless
    /// `includingSelf` is `true`. Returns the event's position (its `eid`).
    @discardableResult
    public func broadcast<Data: Encodable>(to room: String, event: String, data: Data, includingSelf: Bool = false) async throws -> EventID {
        try await rooms.broadcast(room: room, event: event, data: data, except: includingSelf ? nil : socket)
    }
}
