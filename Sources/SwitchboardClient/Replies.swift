/// The ack of `room.join`.
public struct JoinResult: Sendable, Hashable, Decodable {
    /// The room joined.
    public let room: String
    /// Its users, each once.
    public let members: [String]
    /// The room's position when joined: its events after it follow.
    public let eid: String?

    /// ``eid`` parsed.
    public var position: EventPosition? { eid.flatMap { EventPosition($0) } }
}

/// The ack of `room.leave`.
struct LeaveResult: Decodable {
    let left: Bool?
}

/// The ack of `room.members`.
struct MembersResult: Decodable {
    let members: [String]
}

/// The ack of `session.hello` (protocol 1.3), the parts the client uses.
struct HelloAck: Decodable {
    struct RoomOutcome: Decodable {
        struct Failure: Decodable {
            let code: String
            let message: String?
        }
        let room: String
        let eid: String?
        let recovered: Bool?
        let error: Failure?
    }
    let rooms: [RoomOutcome]?
    let pingInterval: Int?
    let pongTimeout: Int?
}

/// The `data` of an `error` reply.
struct ErrorReply: Decodable {
    let code: String
    let message: String?
    /// With `rate_limited`: milliseconds until the request may be sent again.
    var retryAfter: Int? = nil
}

/// The `eid` of a publish's ack (`message.send` and app events that return one).
struct PublishAck: Decodable {
    let eid: String?
}

/// The `room` field of a request's data, if it has one.
struct RoomField: Decodable {
    let room: String?
}
