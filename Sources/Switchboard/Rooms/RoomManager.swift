import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Rooms of the local server: membership, presence and broadcast.
///
/// Every method is thread-safe and synchronous. A broadcast encodes its JSON and WebSocket frame
/// once, assigns the room's next ``EventID``, and hands the same bytes to each event loop that has
/// members (one task per loop, not per recipient). Events of one room reach every member in
/// event-id order.
public final class RoomManager: Sendable {
    private let state = NIOLockedValueBox(State())
    private let logger: Logger
    private let announcesPresence: Bool

    private struct State: Sendable {
        var rooms: [String: Room] = [:]
    }

    /// The members of one event loop in one room.
    private struct MemberGroup: Sendable {
        let hub: LoopHub
        var members: [Socket]
    }

    private struct Room: Sendable {
        let epoch: String
        var lastOffset: UInt64 = 0
        var groups: [MemberGroup] = []
        /// Sockets per user, for presence once per user.
        var socketsPerUser: [String: Int] = [:]

        init(epoch: String) { self.epoch = epoch }

        mutating func nextEventID() -> EventID {
            lastOffset += 1
            return EventID(epoch: epoch, offset: lastOffset)
        }

        /// Assigns the next event id and hands the event's frame to every loop with members.
        mutating func publish(except: Socket?, _ makeFrame: (EventID) -> ByteBuffer) -> EventID {
            let eventID = nextEventID()
            dispatch(except: except) { makeFrame(eventID) }
            return eventID
        }

        /// Hands the frame to every loop with members; called under the lock so that events of
        /// one room are queued on every loop in event-id order. The frame is built once, and not
        /// at all when the only member is the sender.
        func dispatch(except: Socket?, _ makeFrame: () -> ByteBuffer) {
            var frame: ByteBuffer?
            for group in groups {
                // A loop whose only member is the sender has nothing to do: skip the hop.
                if let except, group.members.count == 1, group.members[0] === except { continue }
                let built = frame ?? makeFrame()
                frame = built
                let members = group.members
                let hub = group.hub
                hub.eventLoop.execute { hub.deliver(built, to: members, except: except) }
            }
        }
    }

    /// What ``RoomManager/join(_:room:)`` did.
    public struct JoinResult: Sendable {
        /// `false` when the socket was already in the room.
        public let joined: Bool
        /// The room's latest event id after the join (`nil` for a room with no events yet).
        public let position: EventID?
    }

    init(logger: Logger, presence: Bool = true) {
        self.logger = logger
        self.announcesPresence = presence
    }

    // MARK: membership

    /// Adds `socket` to `room`, creating the room if needed; does nothing (`joined` is `false`) for
    /// a socket whose connection has ended. When it is the user's first socket in
    /// the room, the other members get `presence.join` `{"user": id}` (unless
    /// ``SwitchboardConfiguration/presence`` is off).
    @discardableResult
    public func join(_ socket: Socket, room name: String) -> JoinResult {
        let result = state.withLockedValue { state -> JoinResult in
            if socket.departed {
                return JoinResult(joined: false, position: nil)
            }
            if socket.joinedRooms.contains(name) {
                let room = state.rooms[name]
                return JoinResult(joined: false, position: room.flatMap { Self.position(of: $0) })
            }
            var room = state.rooms.removeValue(forKey: name) ?? Room(epoch: Self.makeEpoch())
            if let index = room.groups.firstIndex(where: { $0.hub === socket.hub }) {
                room.groups[index].members.append(socket)
            } else {
                room.groups.append(MemberGroup(hub: socket.hub, members: [socket]))
            }
            socket.joinedRooms.append(name)
            let userSockets = room.socketsPerUser[socket.user.id, default: 0] + 1
            room.socketsPerUser[socket.user.id] = userSockets
            if userSockets == 1, announcesPresence {
                Self.announce("presence.join", user: socket.user.id, in: &room, name: name, except: socket, allocator: socket.channel.allocator)
            }
            let position = Self.position(of: room)
            state.rooms[name] = room
            return JoinResult(joined: true, position: position)
        }
        if result.joined {
            logger.info("room join", metadata: ["room": "\(name)", "user": "\(socket.user.id)", "socket": "\(socket.id)"])
        }
        return result
    }

    /// Removes `socket` from `room`. When it was the user's last socket there, the remaining
    /// members get `presence.leave` `{"user": id}` (unless ``SwitchboardConfiguration/presence`` is
    /// off). Returns whether it was a member.
    @discardableResult
    public func leave(_ socket: Socket, room name: String) -> Bool {
        let left = state.withLockedValue { state in
            Self.remove(socket, from: name, in: &state, announcesPresence: announcesPresence)
        }
        if left {
            logger.info("room leave", metadata: ["room": "\(name)", "user": "\(socket.user.id)", "socket": "\(socket.id)"])
        }
        return left
    }

    /// Removes `socket` from every room it is in (on disconnect) and keeps it out: a later
    /// ``join(_:room:)`` of it does nothing. Returns the rooms it was in.
    @discardableResult
    public func leaveAll(_ socket: Socket) -> [String] {
        let rooms = state.withLockedValue { state -> [String] in
            socket.departed = true
            let rooms = socket.joinedRooms
            for name in rooms {
                _ = Self.remove(socket, from: name, in: &state, announcesPresence: announcesPresence)
            }
            return rooms
        }
        for name in rooms {
            logger.info("room leave", metadata: ["room": "\(name)", "user": "\(socket.user.id)", "socket": "\(socket.id)"])
        }
        return rooms
    }

    private static func remove(_ socket: Socket, from name: String, in state: inout State, announcesPresence: Bool) -> Bool {
        guard let joinedIndex = socket.joinedRooms.firstIndex(of: name), var room = state.rooms.removeValue(forKey: name) else {
            return false
        }
        socket.joinedRooms.remove(at: joinedIndex)
        if let groupIndex = room.groups.firstIndex(where: { $0.hub === socket.hub }) {
            room.groups[groupIndex].members.removeAll { $0 === socket }
            if room.groups[groupIndex].members.isEmpty {
                room.groups.remove(at: groupIndex)
            }
        }
        let userSockets = room.socketsPerUser[socket.user.id, default: 1] - 1
        if userSockets > 0 {
            room.socketsPerUser[socket.user.id] = userSockets
        } else {
            room.socketsPerUser.removeValue(forKey: socket.user.id)
            if !room.groups.isEmpty, announcesPresence {
                announce("presence.leave", user: socket.user.id, in: &room, name: name, except: nil, allocator: socket.channel.allocator)
            }
        }
        // An empty room is dropped with its epoch: the in-memory broker keeps no history for it.
        if !room.groups.isEmpty {
            state.rooms[name] = room
        }
        return true
    }

    private static func announce(_ event: String, user: String, in room: inout Room, name: String, except: Socket?, allocator: ByteBufferAllocator) {
        var data = ByteBuffer()
        data.writeStaticString("{\"user\":")
        data.writeJSONString(user)
        data.writeInteger(UInt8(ascii: "}"))
        let header = OutboundMessage.Header(event: event, room: name, eventID: room.nextEventID())
        room.dispatch(except: except) {
            data.withUnsafeReadableBytes { OutboundMessage.frame(header, dataJSON: $0, allocator: allocator) }
        }
    }

    // MARK: broadcast

    /// Sends `event` with `data` to every member of `room` but `except`. Returns the event's id, or
    /// `nil` when the room has no members here (nothing is sent then).
    @discardableResult
    public func broadcast<Data: Encodable>(room: String, event: String, data: Data, except: Socket? = nil) throws -> EventID? {
        let json = try OutboundMessage.encodeData(data)
        return json.withUnsafeBytes { broadcast(room: room, event: event, dataJSON: $0, except: except) }
    }

    /// ``broadcast(room:event:data:except:)`` for `data` that is already JSON.
    @discardableResult
    func broadcast(room name: String, event: String, dataJSON: UnsafeRawBufferPointer, except: Socket?) -> EventID? {
        state.withLockedValue { state -> EventID? in
            // Mutated in place (optional chaining), so the room's arrays are not copied.
            state.rooms[name]?.publish(except: except) { eventID in
                OutboundMessage.frame(OutboundMessage.Header(event: event, room: name, eventID: eventID), dataJSON: dataJSON, allocator: Self.allocator)
            }
        }
    }

    /// A broadcast that is not part of the room's history (typing notices): no event id.
    func broadcastEphemeral(room name: String, event: String, dataJSON: UnsafeRawBufferPointer, except: Socket?) {
        state.withLockedValue { state in
            state.rooms[name]?.dispatch(except: except) {
                OutboundMessage.frame(OutboundMessage.Header(event: event, room: name), dataJSON: dataJSON, allocator: Self.allocator)
            }
        }
    }

    private static let allocator = ByteBufferAllocator()

    // MARK: queries

    /// The distinct user ids in `room`, sorted; a user with several sockets is listed once.
    public func members(of room: String) -> [String] {
        state.withLockedValue { state in
            state.rooms[room].map { $0.socketsPerUser.keys.sorted() } ?? []
        }
    }

    /// The rooms `socket` is in, sorted.
    public func rooms(of socket: Socket) -> [String] {
        state.withLockedValue { _ in socket.joinedRooms.sorted() }
    }

    /// Whether `socket` is in `room`.
    public func contains(_ socket: Socket, room: String) -> Bool {
        state.withLockedValue { _ in socket.joinedRooms.contains(room) }
    }

    /// The id of the latest event of `room`, or `nil` when it has none or does not exist here.
    public func position(of room: String) -> EventID? {
        state.withLockedValue { state in state.rooms[room].flatMap { Self.position(of: $0) } }
    }

    /// The number of rooms with at least one member here.
    public var count: Int {
        state.withLockedValue { $0.rooms.count }
    }

    private static func position(of room: Room) -> EventID? {
        room.lastOffset == 0 ? nil : EventID(epoch: room.epoch, offset: room.lastOffset)
    }

    /// A new epoch: the creation time in milliseconds plus randomness, base 36, so epochs of one
    /// room name differ across restarts and re-creations.
    private static func makeEpoch() -> String {
        let millis = UInt64(Date().timeIntervalSince1970 * 1000)
        return String(millis, radix: 36) + String(UInt16.random(in: 0..<1296), radix: 36)
    }
}
