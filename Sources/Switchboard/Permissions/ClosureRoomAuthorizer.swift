/// A ``RoomAuthorizer`` made of a closure, for apps whose decision awaits something (a database,
/// another service).
///
/// ```swift
/// let authorizer = ClosureRoomAuthorizer { action, room, socket in
///     switch action {
///     case .join, .presence: try await acl.isMember(socket.user.id, of: room)
///     case .publish: try await acl.canPost(socket.user.id, in: room)
///     }
/// }
/// ```
public struct ClosureRoomAuthorizer: RoomAuthorizer {
    public typealias Decide = @Sendable (RoomAction, String, Socket) async throws -> Bool

    private let decide: Decide

    /// An authorizer that asks `decide` with the action, the room and the socket.
    public init(_ decide: @escaping Decide) {
        self.decide = decide
    }

    public func authorize(_ action: RoomAction, room: String, socket: Socket) async throws -> Bool {
        try await decide(action, room, socket)
    }
}

/// The `authorizeJoin:` parameter of ``SwitchboardServer``: asks about joins, allows publishing and
/// presence without suspending (so `message.send` stays on the event loop).
struct JoinOnlyRoomAuthorizer: RoomAuthorizer {
    let authorizeJoin: SwitchboardServer.JoinAuthorizer

    func authorize(_ action: RoomAction, room: String, socket: Socket) async throws -> Bool {
        action == .join ? try await authorizeJoin(socket, room) : true
    }

    func authorizeNow(_ action: RoomAction, room: String, socket: Socket) -> Bool? {
        action == .join ? nil : true
    }
}

/// Two authorizers that must both allow: `authorizeJoin:` together with `authorizer:`.
struct BothRoomAuthorizers: RoomAuthorizer {
    let first: any RoomAuthorizer
    let second: any RoomAuthorizer

    func authorize(_ action: RoomAction, room: String, socket: Socket) async throws -> Bool {
        guard try await first.authorize(action, room: room, socket: socket) else { return false }
        return try await second.authorize(action, room: room, socket: socket)
    }

    func authorizeNow(_ action: RoomAction, room: String, socket: Socket) -> Bool? {
        // A refusal by either is final; otherwise both must have answered.
        let first = first.authorizeNow(action, room: room, socket: socket)
        if first == false { return false }
        let second = second.authorizeNow(action, room: room, socket: socket)
        if second == false { return false }
        guard first != nil, second != nil else { return nil }
        return true
    }
}
