import Foundation

/// Payload of `room.join`, `room.leave` and `room.members`.
struct RoomPayload: Codable, Sendable, ValidatablePayload, FlatDecodable {
    let room: String

    init(flat: FlatObject) throws(EventError) {
        room = try flat.requiredString("room")
    }

    func validate() throws {
        if let problem = RoomName.validate(room) {
            throw PayloadValidationError("room: \(problem)")
        }
    }
}

extension EventRouter {
    /// Adds the events every Switchboard server answers, unless the app registered its own.
    mutating func addBuiltinEvents(authorizeJoin: SwitchboardServer.JoinAuthorizer?) {
        if routes["room.join"] == nil {
            if let authorizeJoin {
                on("room.join", as: RoomPayload.self) { payload, context in
                    guard try await authorizeJoin(context.socket, payload.room) else {
                        throw EventError.forbidden("not allowed to join \(payload.room)")
                    }
                    return Self.join(payload.room, context: context)
                }
            } else {
                onLoop("room.join", as: RoomPayload.self) { payload, context in
                    try Self.encodeAck(Self.join(payload.room, context: context))
                }
            }
        }
        if routes["room.leave"] == nil {
            onLoop("room.leave", as: RoomPayload.self) { payload, context in
                let left = context.rooms.leave(context.socket, room: payload.room)
                return try Self.encodeAck(LeaveResult(room: payload.room, left: left))
            }
        }
        if routes["room.members"] == nil {
            onLoop("room.members", as: RoomPayload.self) { payload, context in
                guard context.rooms.contains(context.socket, room: payload.room) else {
                    throw EventError.forbidden("not in room \(payload.room)")
                }
                return try Self.encodeAck(MembersResult(room: payload.room, members: context.rooms.members(of: payload.room)))
            }
        }
        if routes["session.hello"] == nil {
            onLoop("session.hello", as: EmptyPayload.self) { _, context in
                try Self.encodeAck(Self.hello(context))
            }
        }
        if routes["presence.heartbeat"] == nil {
            // Receiving it already counted as activity; the ack tells the client it is alive.
            onLoop("presence.heartbeat", as: EmptyPayload.self) { _, _ in nil }
        }
    }

    private static func hello(_ context: EventContext) -> Hello {
        let configuration = context.switchboard.configuration
        let rooms = context.rooms.rooms(of: context.socket).map { room in
            Hello.RoomPosition(room: room, eid: context.rooms.position(of: room)?.description)
        }
        func milliseconds(_ duration: Duration) -> Int {
            Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
        }
        return Hello(
            socket: context.socket.id.rawValue,
            user: context.user.id,
            rooms: rooms,
            pingInterval: milliseconds(configuration.pingInterval),
            pongTimeout: milliseconds(configuration.pongTimeout),
            maxMessageSize: configuration.maxMessageSize
        )
    }

    struct Hello: Codable, Sendable {
        struct RoomPosition: Codable, Sendable {
            let room: String
            let eid: String?
        }
        let socket: String
        let user: String
        let rooms: [RoomPosition]
        let pingInterval: Int
        let pongTimeout: Int
        let maxMessageSize: Int
    }

    private static func join(_ room: String, context: EventContext) -> JoinResult {
        let result = context.rooms.join(context.socket, room: room)
        return JoinResult(room: room, members: context.rooms.members(of: room), eid: result.position?.description)
    }

    struct JoinResult: Codable, Sendable {
        let room: String
        let members: [String]
        let eid: String?
    }

    struct LeaveResult: Codable, Sendable {
        let room: String
        let left: Bool
    }

    struct MembersResult: Codable, Sendable {
        let room: String
        let members: [String]
    }
}
