import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The rooms of this node: which local connections are in which room, and the fan-out of every
/// room event to them.
///
/// Positions, history and delivery between nodes belong to the ``Broker``; who is in a room,
/// counted per user, to the ``PresenceStore``. The broker hands each event to ``deliver(_:)``
/// framed once; it goes to each event loop with members as one task (not one per recipient), and
/// every member receives a room's events in position order.
///
/// A connection joins a room through a short *recovery*: it is registered first, the broker is
/// asked for the events after the client's position (or just for the position), and only then is
/// it added to the room's fan-out, together with the events that arrived meanwhile (kept in the
/// room's buffer, merged by position). So no event is lost, repeated or reordered between the
/// history read and live delivery, whatever the broker's latency.
///
/// Rooms are spread over shards with a lock each, and a connection's own list of rooms is guarded
/// by one of a set of striped locks: no lock is shared by all rooms.
public final class RoomManager: BrokerSubscriber, Sendable {
    /// The broker of this server's rooms.
    public let broker: any Broker
    /// The broker again when it publishes synchronously (the in-memory one): see ``publishNowOrLater(_:on:)``.
    private let synchronousBroker: (any SynchronousBroker)?
    /// Who is in each room.
    public let presence: any PresenceStore
    private let logger: Logger
    private let announcesPresence: Bool
    private let maxReplay: Int
    /// See ``SwitchboardConfiguration/presenceGracePeriod``.
    private let presenceGrace: Duration
    /// Waits on the server's clock (a closure, so that the type is not generic over it).
    private let sleep: @Sendable (Duration) async throws -> Void
    /// Ended connections whose presence waits out the grace period: user and rooms, by a number
    /// of their own. ``departNow()`` takes them all at once.
    private let departures = NIOLockedValueBox<(next: UInt64, waiting: [UInt64: (user: String, rooms: [String])])>((0, [:]))
    private let shards: [NIOLockedValueBox<[String: LocalRoom]>]
    private let socketLocks: [NIOLock]

    /// The members of one event loop in one room.
    struct MemberGroup: Sendable {
        let hub: LoopHub
        var members: [Socket]
    }

    /// A connection between registration and the end of its recovery. `generation` is the room's
    /// buffer generation when it started: a different one at the end means the buffer overflowed
    /// meanwhile and events were dropped from it.
    struct Recovering: Sendable {
        let socket: Socket
        let generation: UInt64
    }

    struct LocalRoom: Sendable {
        var groups: [MemberGroup] = []
        var recovering: [Recovering] = []
        /// Events delivered while some connection was recovering, in position order.
        var buffer: [HistoryEntry] = []
        var generation: UInt64 = 0
        /// Connections in `groups` and in `recovering`.
        var memberCount = 0
        /// The broker subscription the first member started: every later joiner waits for it too,
        /// so that none reads its recovery before the node receives the room's events.
        var subscription: EventLoopFuture<Void>?

        /// Hands the frame to every loop with members but the origin; keeps it for recovering
        /// connections. Called under the room's shard lock, in the room's position order.
        mutating func dispatch(_ event: BrokerEvent, maxBuffered: Int) {
            let except = event.origin
            for group in groups {
                // A loop whose only member is the sender has nothing to do: skip the hop.
                if let except, group.members.count == 1, group.members[0] === except { continue }
                let frame = event.frame
                let members = group.members
                let hub = group.hub
                hub.eventLoop.execute { hub.deliver(frame, to: members, except: except) }
            }
            if !recovering.isEmpty, let position = event.position {
                if buffer.count >= maxBuffered {
                    // Bounded: the recoveries under way cannot complete in order any more.
                    buffer = []
                    generation &+= 1
                } else {
                    buffer.append(HistoryEntry(position: position, frame: event.frame))
                }
            }
        }

        mutating func addToGroup(_ socket: Socket) {
            if let index = groups.firstIndex(where: { $0.hub === socket.hub }) {
                groups[index].members.append(socket)
            } else {
                groups.append(MemberGroup(hub: socket.hub, members: [socket]))
            }
        }

        /// Removes `socket` from the fan-out or from the recovering; `false` if it was in neither.
        mutating func remove(_ socket: Socket) -> Bool {
            if let groupIndex = groups.firstIndex(where: { $0.hub === socket.hub }),
                let index = groups[groupIndex].members.firstIndex(where: { $0 === socket })
            {
                groups[groupIndex].members.remove(at: index)
                if groups[groupIndex].members.isEmpty { groups.remove(at: groupIndex) }
                return true
            }
            if let index = recovering.firstIndex(where: { $0.socket === socket }) {
                recovering.remove(at: index)
                if recovering.isEmpty { buffer = [] }
                return true
            }
            return false
        }
    }

    init(
        broker: any Broker,
        presence: any PresenceStore,
        logger: Logger,
        announcesPresence: Bool = true,
        maxReplay: Int = 1000,
        presenceGrace: Duration = .zero,
        sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }
    ) {
        self.broker = broker
        self.presenceGrace = presenceGrace
        self.sleep = sleep
        self.synchronousBroker = broker as? any SynchronousBroker
        self.presence = presence
        self.logger = logger
        self.announcesPresence = announcesPresence
        self.maxReplay = max(maxReplay, 0)
        self.shards = (0..<64).map { _ in NIOLockedValueBox([:]) }
        self.socketLocks = (0..<64).map { _ in NIOLock() }
        broker.attach(self)
        presence.observe(self)
    }

    private func shard(of room: String) -> NIOLockedValueBox<[String: LocalRoom]> {
        var hasher = Hasher()
        hasher.combine(room)
        return shards[Int(UInt(bitPattern: hasher.finalize()) % UInt(shards.count))]
    }

    /// Runs `body` with the lock that guards `socket`'s list of rooms.
    private func withRoomList<Result>(of socket: Socket, _ body: () throws -> Result) rethrows -> Result {
        let index = Int(UInt(bitPattern: ObjectIdentifier(socket).hashValue) % UInt(socketLocks.count))
        return try socketLocks[index].withLock(body)
    }

    /// An event loop for work that has none of its own (a broadcast from app code, say).
    private static var anyEventLoop: any EventLoop { MultiThreadedEventLoopGroup.singleton.any() }

    // MARK: delivery (BrokerSubscriber)

    /// Called by the broker, in position order per room: fans the event out to this node's members.
    public func deliver(_ event: BrokerEvent) {
        let maxBuffered = maxReplay
        shard(of: event.room).withLockedValue { rooms in
            // Mutated in place (optional chaining), so the room's arrays are not copied.
            rooms[event.room]?.dispatch(event, maxBuffered: maxBuffered)
        }
    }

    /// Called by the broker when this node missed events of `room` that cannot be had any more:
    /// its local members are closed with 1013, so that they reconnect and resume (getting the
    /// events from history, or `state.refresh`).
    public func resynchronize(_ room: String) {
        let sockets = shard(of: room).withLockedValue { rooms -> [Socket] in
            guard let local = rooms[room] else { return [] }
            return local.groups.flatMap(\.members) + local.recovering.map(\.socket)
        }
        logger.warning("room resynchronized: its members reconnect", metadata: ["room": "\(room)", "members": "\(sockets.count)"])
        for socket in sockets {
            socket.eventLoop.execute {
                socket.closeOnLoop(code: CloseCode.tryAgainLater, reason: "missed events; reconnect and resume", then: .awaitReply)
            }
        }
    }

    // MARK: joining

    /// What a join did.
    public struct JoinResult: Sendable {
        public enum Status: Sendable, Equatable {
            /// The connection is in the room now.
            case joined
            /// It was in the room already; nothing changed.
            case alreadyMember
            /// Its connection has ended: nothing was done.
            case closed
        }

        public let status: Status
        /// The room's position when the connection's delivery began: events after it reach the
        /// connection live (`nil` when closed).
        public let position: EventID?
        /// Whether every event after the requested position was replayed (always `true` without a
        /// position); `false` means the connection was sent `state.refresh` instead.
        public let recovered: Bool

        /// `false` when the connection was already in the room or has ended.
        public var joined: Bool { status == .joined }
    }

    /// A join whose recovery has been read, to be finished on the connection's loop right after its
    /// reply has been queued: ``finish(_:)`` sends the replay (or `state.refresh`) and the events
    /// buffered meanwhile, and adds the connection to the room's fan-out.
    struct PreparedJoin: Sendable {
        let socket: Socket
        let room: String
        let result: JoinResult
        let replay: [HistoryEntry]
        /// The `state.refresh` frame, when not recovered.
        let refresh: ByteBuffer?
    }

    /// Joins `socket` to `room`, replaying what it missed after `since` (or, when that cannot be
    /// proven complete, sending `state.refresh` with `snapshot`'s data). When it is the user's first
    /// connection in the room, the other members get `presence.join` `{"user": id}` (unless
    /// ``SwitchboardConfiguration/presence`` is off). A socket whose connection ended is not joined.
    @discardableResult
    public func join(_ socket: Socket, room: String, since: EventID? = nil, snapshot: RoomSnapshot = .none) async throws -> JoinResult {
        let prepared = try await socket.eventLoop.flatSubmit {
            self.prepareJoin(socket, room: room, since: since, snapshot: snapshot)
        }.get()
        try await socket.eventLoop.submit { self.finish(prepared) }.get()
        return prepared.result
    }

    /// On `socket`'s loop: registers the join and reads the recovery; see ``PreparedJoin``.
    func prepareJoin(_ socket: Socket, room name: String, since: EventID?, snapshot: RoomSnapshot) -> EventLoopFuture<PreparedJoin> {
        let eventLoop = socket.eventLoop
        enum Registration { case added, already, closed }
        let registration = withRoomList(of: socket) { () -> Registration in
            if socket.departed { return .closed }
            if socket.joinedRooms.contains(name) { return .already }
            socket.joinedRooms.append(name)
            return .added
        }
        switch registration {
        case .closed:
            return eventLoop.makeSucceededFuture(
                PreparedJoin(socket: socket, room: name, result: JoinResult(status: .closed, position: nil, recovered: false), replay: [], refresh: nil))
        case .already:
            return broker.recover(name, after: nil, limit: 0, on: eventLoop).map { recovery in
                PreparedJoin(
                    socket: socket, room: name, result: JoinResult(status: .alreadyMember, position: recovery.current, recovered: true), replay: [], refresh: nil)
            }
        case .added:
            break
        }
        let (subscription, started) = shard(of: name).withLockedValue { rooms -> (EventLoopFuture<Void>, EventLoopPromise<Void>?) in
            var room = rooms.removeValue(forKey: name) ?? LocalRoom()
            defer { rooms[name] = room }
            room.memberCount += 1
            room.recovering.append(Recovering(socket: socket, generation: room.generation))
            if let subscription = room.subscription { return (subscription, nil) }
            // The broker is called outside this lock (it delivers under its own lock, into this
            // one); the promise lets joiners that come meanwhile wait for the same subscription.
            let promise = eventLoop.makePromise(of: Void.self)
            room.subscription = promise.futureResult
            return (promise.futureResult, promise)
        }
        logger.info("room join", metadata: ["room": "\(name)", "user": "\(socket.user.id)", "socket": "\(socket.id)"])
        if let started {
            broker.subscribe(name, on: eventLoop).cascade(to: started)
        }
        let subscribed = subscription.hop(to: eventLoop)
        let announcesPresence = self.announcesPresence
        let maxReplay = self.maxReplay
        // The joiner's position is read before its presence.join goes out: a member who answers
        // the announcement at once ("hi alice") publishes after that position, so the joiner gets
        // the answer (from this registration's buffer, or live).
        return subscribed.flatMap {
            self.presence.add(socket.user.id, to: name, on: eventLoop)
        }.flatMap { firstOfUser in
            self.broker.recover(name, after: since, limit: maxReplay, on: eventLoop).map { (firstOfUser, $0) }
        }.flatMap { firstOfUser, recovery -> EventLoopFuture<Recovery> in
            guard firstOfUser, announcesPresence else { return eventLoop.makeSucceededFuture(recovery) }
            return self.broker.publish(Self.presenceEvent("presence.join", user: socket.user.id, room: name, origin: socket), on: eventLoop).map { _ in recovery }
        }.flatMap { recovery -> EventLoopFuture<PreparedJoin> in
            switch recovery {
            case .recovered(let current, let events) where since == nil && snapshot.sentOnJoin:
                // A first join of a server whose snapshot is its joiners' initial state.
                return snapshot.data(for: name, socket: socket, broker: self.broker, on: eventLoop).map { data in
                    let header = OutboundMessage.Header(event: "state.refresh", room: name, eventID: current)
                    let frame = OutboundMessage.frame(header, dataJSON: data ?? ByteBuffer(staticString: "null"), allocator: socket.channel.allocator)
                    return PreparedJoin(
                        socket: socket, room: name, result: JoinResult(status: .joined, position: current, recovered: true), replay: events, refresh: frame)
                }
            case .recovered(let current, let events):
                return eventLoop.makeSucceededFuture(
                    PreparedJoin(
                        socket: socket, room: name, result: JoinResult(status: .joined, position: current, recovered: true), replay: events, refresh: nil))
            case .notRecoverable(let current):
                return snapshot.data(for: name, socket: socket, broker: self.broker, on: eventLoop).map { data in
                    let header = OutboundMessage.Header(event: "state.refresh", room: name, eventID: current)
                    let frame = OutboundMessage.frame(header, dataJSON: data ?? ByteBuffer(staticString: "null"), allocator: socket.channel.allocator)
                    return PreparedJoin(
                        socket: socket, room: name, result: JoinResult(status: .joined, position: current, recovered: false), replay: [], refresh: frame)
                }
            }
        }.flatMapError { error in
            // Nothing of the join is left behind when the broker, the presence store or the
            // snapshot failed.
            self.leave(socket, room: name)
            return eventLoop.makeFailedFuture(error)
        }
    }

    /// On the socket's loop, right after its reply was queued: the replay or `state.refresh`, then
    /// the events buffered since the registration, then live delivery. All in this loop turn, so
    /// no live event of the room (which arrives as a later task on this loop) gets ahead of them.
    func finish(_ prepared: PreparedJoin) {
        guard prepared.result.status == .joined, let position = prepared.result.position else { return }
        let socket = prepared.socket
        enum Outcome { case gone, overflowed, deliver([HistoryEntry]) }
        let outcome = shard(of: prepared.room).withLockedValue { rooms -> Outcome in
            guard var room = rooms.removeValue(forKey: prepared.room) else { return .gone }
            defer { rooms[prepared.room] = room }
            guard let index = room.recovering.firstIndex(where: { $0.socket === socket }) else { return .gone }
            let generation = room.recovering[index].generation
            room.recovering.remove(at: index)
            let buffered = room.buffer.filter { $0.position.epoch == position.epoch && $0.position.offset > position.offset }
            if room.recovering.isEmpty { room.buffer = [] }
            guard generation == room.generation else {
                // Events were dropped from the overflowing buffer: this connection cannot be
                // brought up to date in order. It stays registered until its close removes it.
                room.recovering.append(Recovering(socket: socket, generation: room.generation))
                return .overflowed
            }
            room.addToGroup(socket)
            return .deliver(buffered)
        }
        switch outcome {
        case .gone:
            return
        case .overflowed:
            logger.info("resume overflowed", metadata: ["room": "\(prepared.room)", "socket": "\(socket.id)"])
            socket.closeOnLoop(code: CloseCode.tryAgainLater, reason: "room too busy to resume; reconnect", then: .awaitReply)
        case .deliver(let buffered):
            if let refresh = prepared.refresh {
                socket.enqueue(refresh)
                socket.hub.metrics.refreshes &+= 1
            } else {
                for event in prepared.replay { socket.enqueue(event.frame) }
                socket.hub.metrics.replayedEvents &+= prepared.replay.count
            }
            for event in buffered { socket.enqueue(event.frame) }
            socket.hub.scheduleFlush()
        }
    }

    // MARK: leaving

    /// Removes `socket` from `room`. When it was the user's last connection there, the remaining
    /// members get `presence.leave` `{"user": id}` (unless ``SwitchboardConfiguration/presence`` is
    /// off). Returns whether it was a member.
    @discardableResult
    public func leave(_ socket: Socket, room name: String) -> Bool {
        let wasMember = withRoomList(of: socket) { () -> Bool in
            guard let index = socket.joinedRooms.firstIndex(of: name) else { return false }
            socket.joinedRooms.remove(at: index)
            return true
        }
        guard wasMember else { return false }
        removeFromRoom(socket, name)
        return true
    }

    /// Removes `socket` from every room it is in (on disconnect) and keeps it out: a later join of
    /// it does nothing. Returns the rooms it was in. The socket leaves the rooms' fan-out at once;
    /// its user stays present for ``SwitchboardConfiguration/presenceGracePeriod``.
    @discardableResult
    public func leaveAll(_ socket: Socket) -> [String] {
        let rooms = withRoomList(of: socket) { () -> [String] in
            socket.departed = true
            let rooms = socket.joinedRooms
            socket.joinedRooms = []
            return rooms
        }
        for name in rooms {
            removeFromFanOut(socket, name)
        }
        guard !rooms.isEmpty else { return rooms }
        let user = socket.user.id
        guard presenceGrace > .zero else {
            for name in rooms { removePresence(user, from: name, on: socket.eventLoop) }
            return rooms
        }
        // A reconnect of the user within the grace period adds to the user's count in the room
        // before this takes from it, so the store reports neither a first nor a last connection:
        // the members see no leave and no join. One task per ended connection, not per room.
        let grace = presenceGrace
        let sleep = self.sleep
        let number = departures.withLockedValue { departures in
            defer { departures.next += 1 }
            departures.waiting[departures.next] = (user, rooms)
            return departures.next
        }
        Task {
            // Cancelled or not, the user must not stay present for ever.
            try? await sleep(grace)
            // Gone already when departNow() took it (the node is stopping).
            guard self.departures.withLockedValue({ $0.waiting.removeValue(forKey: number) }) != nil else { return }
            // Not the connection's loop: its group may have been shut down meanwhile (a server
            // stopping), and a shut-down loop takes no more work.
            let loop = Self.anyEventLoop
            for name in rooms { self.removePresence(user, from: name, on: loop) }
        }
        return rooms
    }

    /// Ends the grace period of every connection that ended within it: their users leave the
    /// rooms' presence now (announced where they were the last), instead of after the period.
    /// For a node that stops: its deferred removals could not run later, and the other nodes
    /// would hear `presence.leave` only when its entries expire. Returns once the presence store
    /// and the broker have answered.
    public func departNow() async {
        let waiting = departures.withLockedValue { departures in
            defer { departures.waiting = [:] }
            return departures.waiting.values
        }
        let loop = Self.anyEventLoop
        var removals: [EventLoopFuture<Void>] = []
        for (user, rooms) in waiting {
            for name in rooms { removals.append(removePresence(user, from: name, on: loop)) }
        }
        for removal in removals { try? await removal.get() }
    }

    private func removeFromRoom(_ socket: Socket, _ name: String) {
        removeFromFanOut(socket, name)
        removePresence(socket.user.id, from: name, on: socket.eventLoop)
    }

    /// Takes `socket` out of the room's fan-out (and the node out of the room's broker
    /// subscription when it was the last member here).
    private func removeFromFanOut(_ socket: Socket, _ name: String) {
        let lastHere = shard(of: name).withLockedValue { rooms -> Bool in
            guard var room = rooms.removeValue(forKey: name) else { return false }
            if room.remove(socket) { room.memberCount -= 1 }
            if room.memberCount > 0 {
                rooms[name] = room
                return false
            }
            return true
        }
        if lastHere { broker.unsubscribe(name) }
        logger.info("room leave", metadata: ["room": "\(name)", "user": "\(socket.user.id)", "socket": "\(socket.id)"])
    }

    /// Takes one connection of `user` out of the room's presence; announces `presence.leave` when
    /// it was the user's last.
    @discardableResult
    private func removePresence(_ user: String, from name: String, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let announcesPresence = self.announcesPresence
        let logger = self.logger
        let removed = presence.remove(user, from: name, on: eventLoop).flatMap { lastOfUser -> EventLoopFuture<Void> in
            guard lastOfUser, announcesPresence else { return eventLoop.makeSucceededVoidFuture() }
            return self.broker.publish(Self.presenceEvent("presence.leave", user: user, room: name, origin: nil), on: eventLoop).map { _ in }
        }
        removed.whenFailure { error in
            // Nobody is waiting for this one: say it in the log, at least.
            logger.error("presence.leave not announced", metadata: ["room": "\(name)", "user": "\(user)", "error": "\(error)"])
        }
        return removed
    }

    /// Announces presence that changed without a join or leave of this node (see ``PresenceObserver``).
    private func announce(_ event: String, _ users: [String], in room: String) {
        guard announcesPresence else { return }
        let eventLoop = Self.anyEventLoop
        for user in users {
            broker.publish(Self.presenceEvent(event, user: user, room: room, origin: nil), on: eventLoop).whenFailure { [logger] error in
                logger.error("\(event) not announced", metadata: ["room": "\(room)", "user": "\(user)", "error": "\(error)"])
            }
        }
    }

    static func presenceEvent(_ event: String, user: String, room: String, origin: Socket?) -> Publication {
        var data = ByteBuffer()
        data.reserveCapacity(12 + user.utf8.count)
        data.writeStaticString("{\"user\":")
        data.writeJSONString(user)
        data.writeInteger(UInt8(ascii: "}"))
        // Ephemeral: presence takes no position, so members that drop and come back at once do
        // not push each other past the replay limit, and idle rooms keep no history of joins.
        return Publication(room: room, event: event, dataJSON: data, persistent: false, origin: origin)
    }

    // MARK: broadcast

    /// Sends `event` with `data` to every member of `room` but `except`, and keeps it in the room's
    /// history. Returns its position. `data` is encoded once, on the calling thread.
    @discardableResult
    public func broadcast<Data: Encodable>(room: String, event: String, data: Data, except: Socket? = nil) async throws -> EventID {
        let json = try OutboundMessage.encodeData(data)
        let publication = Publication(room: room, event: event, dataJSON: ByteBuffer(bytes: json), origin: except)
        guard let position = try await publish(publication, on: except?.eventLoop ?? Self.anyEventLoop).get() else {
            throw EventError(code: EventError.Code.handlerFailed, message: "the broker gave the event no position")
        }
        return position
    }

    /// Sends `event` to every member of `room` but `except` without keeping it (no position, no
    /// history): typing notices and the like.
    public func broadcastEphemeral<Data: Encodable>(room: String, event: String, data: Data, except: Socket? = nil) async throws {
        let json = try OutboundMessage.encodeData(data)
        let publication = Publication(room: room, event: event, dataJSON: ByteBuffer(bytes: json), persistent: false, origin: except)
        _ = try await publish(publication, on: except?.eventLoop ?? Self.anyEventLoop).get()
    }

    /// Publishes through the broker.
    func publish(_ publication: Publication, on eventLoop: any EventLoop) -> EventLoopFuture<EventID?> {
        broker.publish(publication, on: eventLoop)
    }

    /// How ``publishNowOrLater(_:on:)`` published.
    enum Published {
        /// In this turn (a ``SynchronousBroker``): the position, `nil` for an ephemeral event.
        case now(EventID?)
        /// Once the broker answers.
        case later(EventLoopFuture<EventID?>)
    }

    /// Publishes through the broker, in this turn when it is a ``SynchronousBroker``: the message
    /// path then needs no future.
    func publishNowOrLater(_ publication: Publication, on eventLoop: any EventLoop) -> Published {
        if let synchronousBroker { return .now(synchronousBroker.publishNow(publication)) }
        return .later(broker.publish(publication, on: eventLoop))
    }

    // MARK: queries

    /// The distinct user ids in `room`, sorted; a user with several connections is listed once.
    public func members(of room: String) async throws -> [String] {
        try await presence.members(of: room, on: Self.anyEventLoop).get()
    }

    /// The rooms `socket` is in, sorted.
    public func rooms(of socket: Socket) -> [String] {
        withRoomList(of: socket) { socket.joinedRooms.sorted() }
    }

    /// Whether `socket` is in `room`.
    public func contains(_ socket: Socket, room: String) -> Bool {
        withRoomList(of: socket) { socket.joinedRooms.contains(room) }
    }

    /// The position of `room`'s latest event (offset 0 when it has none yet).
    public func position(of room: String) async throws -> EventID {
        try await broker.recover(room, after: nil, limit: 0, on: Self.anyEventLoop).get().current
    }

    /// The number of rooms with at least one member on this node.
    public var count: Int {
        shards.reduce(0) { $0 + $1.withLockedValue { $0.count } }
    }
}

extension RoomManager: PresenceObserver {
    public func presenceExpired(_ users: [String], in room: String) {
        logger.info("presence expired", metadata: ["room": "\(room)", "users": "\(users.count)"])
        announce("presence.leave", users, in: room)
    }

    public func presenceRestored(_ users: [String], in room: String) {
        announce("presence.join", users, in: room)
    }
}
