import Foundation
import NIOCore

/// Payload of `room.leave` and `room.members`.
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

/// Payload of `room.join`: the room, and optionally the last event id the client saw in it.
struct JoinPayload: Codable, Sendable, ValidatablePayload, FlatDecodable {
    let room: String
    let since: String?

    init(flat: FlatObject) throws(EventError) {
        room = try flat.requiredString("room")
        since = try flat.optionalString("since")
    }

    func validate() throws {
        if let problem = RoomName.validate(room) {
            throw PayloadValidationError("room: \(problem)")
        }
        if let since, EventID(since) == nil {
            throw PayloadValidationError("since: not an event id (<epoch>:<offset>)")
        }
    }

    var sinceID: EventID? { since.flatMap(EventID.init) }
}

/// Payload of `session.hello`: the last event id the client saw per room, to resume.
struct HelloPayload: Codable, Sendable, ValidatablePayload, FlatDecodable {
    let resume: [String: String]?

    /// Most rooms one hello may resume.
    static let maxResumedRooms = 256

    init(flat: FlatObject) throws(EventError) {
        switch flat["resume"] {
        case .none, .null:
            resume = nil
        default:
            throw EventError(code: EventError.Code.invalidPayload, message: "data.resume must be an object")
        }
    }

    func validate() throws {
        guard let resume else { return }
        if resume.count > Self.maxResumedRooms {
            throw PayloadValidationError("resume: at most \(Self.maxResumedRooms) rooms")
        }
        for (room, eid) in resume {
            if let problem = RoomName.validate(room) {
                throw PayloadValidationError("resume: room \(room.debugDescription): \(problem)")
            }
            if EventID(eid) == nil {
                throw PayloadValidationError("resume.\(room): not an event id (<epoch>:<offset>)")
            }
        }
    }

    var positions: [String: EventID] {
        var positions: [String: EventID] = [:]
        for (room, eid) in resume ?? [:] {
            positions[room] = EventID(eid)
        }
        return positions
    }
}

extension EventRouter {
    /// Adds the events every Switchboard server answers, unless the app registered its own.
    mutating func addBuiltinEvents() {
        if routes["room.join"] == nil {
            onLoopReply("room.join", as: JoinPayload.self) { payload, context in
                .later(Self.join(payload.room, since: payload.sinceID, context: context))
            }
        }
        if routes["room.leave"] == nil {
            onLoop("room.leave", as: RoomPayload.self) { payload, context in
                let left = context.rooms.leave(context.socket, room: payload.room)
                return try Self.encodeAck(LeaveResult(room: payload.room, left: left))
            }
        }
        if routes["room.members"] == nil {
            onLoopReply("room.members", as: RoomPayload.self) { payload, context in
                guard context.rooms.contains(context.socket, room: payload.room) else {
                    throw EventError.forbidden("not in room \(payload.room)")
                }
                let rooms = context.rooms
                let eventLoop = context.socket.eventLoop
                let members = context.switchboard.checkPermission(.presence, room: payload.room, socket: context.socket).flatMap {
                    rooms.presence.members(of: payload.room, on: eventLoop)
                }
                return .later(members.flatMapThrowing { DeferredReply(data: try Self.encodeAck(MembersResult(room: payload.room, members: $0))) })
            }
        }
        if routes["session.hello"] == nil {
            onLoopReply("session.hello", as: HelloPayload.self) { payload, context in
                .later(Self.hello(resume: payload.positions, context: context))
            }
        }
        if routes["presence.heartbeat"] == nil {
            // Receiving it already counted as activity; the ack tells the client it is alive.
            onLoop("presence.heartbeat", as: EmptyPayload.self) { _, _ in nil }
        }
    }

    // MARK: room.join

    /// Joins `room` if the socket may; the ack's `members` are empty when it may not see the
    /// room's presence. Both permissions are settled before the join, so that a failure cannot
    /// leave a join prepared and never finished.
    private static func join(_ room: String, since: EventID?, context: EventContext) -> EventLoopFuture<DeferredReply> {
        let socket = context.socket
        let switchboard = context.switchboard
        let rooms = context.rooms
        let eventLoop = socket.eventLoop
        return switchboard.checkPermission(.join, room: room, socket: socket).flatMap {
            switchboard.permission(.presence, room: room, socket: socket)
        }.flatMap { seesMembers in
            rooms.prepareJoin(socket, room: room, since: since, snapshot: switchboard.snapshot).map { ($0, seesMembers) }
        }.flatMap { prepared, seesMembers in
            let members = seesMembers ? rooms.presence.members(of: room, on: eventLoop) : eventLoop.makeSucceededFuture([])
            return members.flatMapThrowing { members in
                let result = JoinResult(
                    room: room, members: members, eid: prepared.result.position?.description, recovered: prepared.result.recovered)
                return DeferredReply(data: try encodeAck(result), followUp: { rooms.finish(prepared) })
            }
        }
    }

    struct JoinResult: Codable, Sendable {
        let room: String
        let members: [String]
        let eid: String?
        let recovered: Bool
    }

    struct LeaveResult: Codable, Sendable {
        let room: String
        let left: Bool
    }

    struct MembersResult: Codable, Sendable {
        let room: String
        let members: [String]
    }

    // MARK: session.hello

    /// Joins the handshake's rooms (resuming those in `resume`) and the other rooms of `resume`,
    /// each as far as the authorizer allows (a refused room of the handshake is skipped unless
    /// `resume` names it), then acks with every room's outcome; the replays follow the ack.
    private static func hello(resume: [String: EventID], context: EventContext) -> EventLoopFuture<DeferredReply> {
        let socket = context.socket
        let switchboard = context.switchboard
        let rooms = context.rooms
        let eventLoop = socket.eventLoop
        var joins = MessageDispatcher.joinPendingRooms(socket, resume: resume, finishAtOnce: false, switchboard: switchboard)
        let handshakeRooms = Set(joins.map(\.room))
        let earlierRooms = rooms.rooms(of: socket).filter { !handshakeRooms.contains($0) && resume[$0] == nil }
        for (room, since) in resume.sorted(by: { $0.key < $1.key }) where !handshakeRooms.contains(room) {
            let join = switchboard.checkPermission(.join, room: room, socket: socket).flatMap {
                rooms.prepareJoin(socket, room: room, since: since, snapshot: switchboard.snapshot)
            }
            joins.append((room, join))
        }
        // Rooms joined before this hello (by room.join): their current positions.
        let earlier = earlierRooms.map { room in
            rooms.broker.recover(room, after: nil, limit: 0, on: eventLoop).map { Hello.RoomOutcome(room: room, eid: $0.current.description, recovered: nil, error: nil) }
        }
        let allJoins = joins
        let outcomes = EventLoopFuture.whenAllComplete(allJoins.map(\.join), on: eventLoop)
        return outcomes.and(EventLoopFuture.whenAllSucceed(earlier, on: eventLoop)).flatMapThrowing { results, earlier in
            var reported = earlier
            var prepared: [RoomManager.PreparedJoin] = []
            for (index, result) in results.enumerated() {
                let room = allJoins[index].room
                switch result {
                case .success(let join):
                    guard join.result.status != .closed else { continue }
                    prepared.append(join)
                    reported.append(Hello.RoomOutcome(room: room, eid: join.result.position?.description, recovered: join.result.recovered, error: nil))
                case .failure(is MessageDispatcher.HandshakeRoomDenied):
                    // Skipped (and logged) like any refused room of the handshake, unless the
                    // client asked to resume it: then it learns why it is not back in it.
                    guard resume[room] != nil else { continue }
                    let error = SwitchboardServer.forbidden(.join, room: room)
                    reported.append(Hello.RoomOutcome(room: room, eid: nil, recovered: nil, error: .init(code: error.code, message: error.message)))
                case .failure(let error as EventError):
                    reported.append(Hello.RoomOutcome(room: room, eid: nil, recovered: nil, error: .init(code: error.code, message: error.message)))
                case .failure(let error):
                    switchboard.logger.error("resuming a room failed", metadata: ["room": "\(room)", "socket": "\(socket.id)", "error": "\(error)"])
                    reported.append(
                        Hello.RoomOutcome(room: room, eid: nil, recovered: nil, error: .init(code: EventError.Code.unavailable, message: "try again")))
                }
            }
            reported.sort { $0.room < $1.room }
            let ack = try encodeAck(Self.hello(context, rooms: reported))
            let joined = prepared
            return DeferredReply(data: ack) {
                for join in joined { rooms.finish(join) }
            }
        }
    }

    private static func hello(_ context: EventContext, rooms: [Hello.RoomOutcome]) -> Hello {
        let configuration = context.switchboard.configuration
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
        struct RoomOutcome: Codable, Sendable {
            struct Failure: Codable, Sendable {
                let code: String
                let message: String
            }
            let room: String
            let eid: String?
            /// Present for the rooms this hello joined: whether the missed events follow.
            let recovered: Bool?
            /// Present for a room that could not be joined.
            let error: Failure?
        }
        let socket: String
        let user: String
        let rooms: [RoomOutcome]
        let pingInterval: Int
        let pongTimeout: Int
        let maxMessageSize: Int
    }
}
