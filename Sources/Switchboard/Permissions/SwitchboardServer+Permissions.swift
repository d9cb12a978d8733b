import NIOCore

extension SwitchboardServer {
    /// Whether `socket` may do `action` in `room`, when that is known without waiting: always
    /// `true` without an authorizer; `nil` when the authorizer must be asked asynchronously.
    func permissionNow(_ action: RoomAction, room: String, socket: Socket) -> Bool? {
        guard let authorizer else { return true }
        return authorizer.authorizeNow(action, room: room, socket: socket)
    }

    /// Whether `socket` may do `action` in `room`, on the socket's loop. Completes at once when the
    /// answer needs no waiting.
    func permission(_ action: RoomAction, room: String, socket: Socket) -> EventLoopFuture<Bool> {
        let eventLoop = socket.eventLoop
        if let allowed = permissionNow(action, room: room, socket: socket) {
            return eventLoop.makeSucceededFuture(allowed)
        }
        guard let authorizer else { return eventLoop.makeSucceededFuture(true) }
        let promise = eventLoop.makePromise(of: Bool.self)
        promise.completeWithTask {
            try await authorizer.authorize(action, room: room, socket: socket)
        }
        return promise.futureResult
    }

    /// Succeeds when `socket` may do `action` in `room`, else fails with `forbidden`.
    func checkPermission(_ action: RoomAction, room: String, socket: Socket) -> EventLoopFuture<Void> {
        permission(action, room: room, socket: socket).flatMapThrowing { allowed in
            guard allowed else { throw Self.forbidden(action, room: room) }
        }
    }

    /// The error reply of a denied `action`.
    static func forbidden(_ action: RoomAction, room: String) -> EventError {
        switch action {
        case .join: EventError.forbidden("not allowed to join \(room)")
        case .publish: EventError.forbidden("not allowed to publish to \(room)")
        case .presence: EventError.forbidden("not allowed to see the members of \(room)")
        }
    }
}
