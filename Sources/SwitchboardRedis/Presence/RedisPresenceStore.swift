import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle
import Switchboard

/// A ``PresenceStore`` shared by every node on one Redis: a room's members over all nodes, each
/// user listed and announced once however many connections and nodes it has.
///
/// - Each node counts its own connections per user and room in memory and tells Redis only when
///   a user's first connection on the node arrives in a room or its last one leaves
///   (``RedisPresenceScripts``). Redis counts nodes per user, so `presence.join` goes out when a
///   user's first node has it and `presence.leave` when its last one no longer does.
/// - Each entry expires `entryTTL` after its node last refreshed it. The node refreshes its
///   entries every third of that (``run()``), so a node that dies without cleaning up (kill -9,
///   a lost machine) is forgotten within `entryTTL`; the node that notices announces the leave.
/// - A node that could not refresh in time (Redis was away) puts its entries back at the next
///   refresh and announces those users again.
/// - A fault of Redis fails the call (the join gets `unavailable`); a leave that cannot reach
///   Redis is logged, and its entry expires.
///
/// Commands for one room go on one connection, so that a join and the leave after it reach Redis
/// in that order.
public final class RedisPresenceStore: PresenceStore, Service {
    public let client: RedisClient
    public let keyPrefix: String
    /// How long an entry outlives its node's last refresh. Default 30 s.
    public let entryTTL: Duration
    private let node = NodeTime.nodeID()
    private let time: NodeTime
    private let local = InMemoryPresenceStore()
    private let observer = NIOLockedValueBox<(any PresenceObserver)?>(nil)
    private let logger: Logger

    /// - Parameters:
    ///   - client: the command pool (e.g. a ``RedisBroker``'s `client`, which the broker runs).
    ///   - keyPrefix: the start of every key, as the broker's.
    ///   - entryTTL: how long a dead node's entries stay.
    ///   - clock: time for expiry and for the refresh loop.
    public init<C: Clock & Sendable>(
        client: RedisClient,
        keyPrefix: String = "switchboard:",
        entryTTL: Duration = .seconds(30),
        clock: C,
        logger: Logger = Logger(label: "switchboard.redis.presence")
    ) where C.Duration == Duration {
        self.client = client
        self.keyPrefix = keyPrefix
        self.entryTTL = entryTTL
        self.time = NodeTime(clock: clock)
        self.logger = logger
    }

    /// A store on the system's clock.
    public convenience init(
        client: RedisClient, keyPrefix: String = "switchboard:", entryTTL: Duration = .seconds(30),
        logger: Logger = Logger(label: "switchboard.redis.presence")
    ) {
        self.init(client: client, keyPrefix: keyPrefix, entryTTL: entryTTL, clock: ContinuousClock(), logger: logger)
    }

    func keys(_ room: String) -> [RESPCommandArgument] {
        [RESPCommandArgument("\(keyPrefix){\(room)}:presence"), RESPCommandArgument("\(keyPrefix){\(room)}:presence:users")]
    }

    private var ttlMilliseconds: Int64 { NodeTime.milliseconds(entryTTL) }

    // MARK: PresenceStore

    public func observe(_ observer: any PresenceObserver) {
        self.observer.withLockedValue { $0 = observer }
    }

    public func add(_ user: String, to room: String, on eventLoop: any EventLoop) -> EventLoopFuture<Bool> {
        guard local.addNow(user, to: room) else { return eventLoop.makeSucceededFuture(false) }
        return run(on: eventLoop) {
            let now = self.time.now()
            let reply = try await self.client.eval(
                RedisPresenceScripts.add, keys: self.keys(room),
                arguments: [
                    RESPCommandArgument(now), RESPCommandArgument(now + self.ttlMilliseconds), RESPCommandArgument(self.ttlMilliseconds * 2),
                    RESPCommandArgument("\(self.node)|\(user)"), RESPCommandArgument(user),
                ],
                affinity: room)
            return try self.flagAndGone(reply, room: room)
        }.flatMapErrorThrowing { error in
            // The join fails, and the rooms layer takes it back: so must the count here.
            self.local.removeNow(user, from: room)
            throw error
        }
    }

    public func remove(_ user: String, from room: String, on eventLoop: any EventLoop) -> EventLoopFuture<Bool> {
        guard local.removeNow(user, from: room) else { return eventLoop.makeSucceededFuture(false) }
        return run(on: eventLoop) {
            let reply = try await self.client.eval(
                RedisPresenceScripts.remove, keys: self.keys(room),
                arguments: [RESPCommandArgument(self.time.now()), RESPCommandArgument("\(self.node)|\(user)"), RESPCommandArgument(user)],
                affinity: room)
            return try self.flagAndGone(reply, room: room)
        }
    }

    public func members(of room: String, on eventLoop: any EventLoop) -> EventLoopFuture<[String]> {
        run(on: eventLoop) {
            let reply = try await self.client.eval(
                RedisPresenceScripts.members, keys: self.keys(room), arguments: [RESPCommandArgument(self.time.now())], affinity: room)
            guard let parts = reply.array, parts.count == 2, let users = parts[0].array else {
                throw RedisError.protocolError("presence members answered \(reply)")
            }
            self.report(gone: parts[1], room: room)
            return users.compactMap(\.string).sorted()
        }
    }

    /// `{flag, gone}` → flag; reports `gone`.
    private func flagAndGone(_ reply: RESPValue, room: String) throws -> Bool {
        guard let parts = reply.array, parts.count == 2, let flag = parts[0].int else {
            throw RedisError.protocolError("presence script answered \(reply)")
        }
        report(gone: parts[1], room: room)
        return flag == 1
    }

    private func report(gone: RESPValue, room: String) {
        let users = gone.array?.compactMap(\.string) ?? []
        guard !users.isEmpty else { return }
        observer.withLockedValue { $0 }?.presenceExpired(users, in: room)
    }

    private func run<T: Sendable>(on eventLoop: any EventLoop, _ body: @escaping @Sendable () async throws -> T) -> EventLoopFuture<T> {
        let promise = eventLoop.makePromise(of: T.self)
        promise.completeWithTask(body)
        return promise.futureResult
    }

    // MARK: Refresh

    /// Moves the expiry of every entry of this node on (one script per room, pipelined) and
    /// drops what expired in those rooms. ``run()`` calls it every third of `entryTTL`.
    public func refresh() async throws {
        let rooms = local.allMembers()
        let now = time.now()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (room, users) in rooms {
                group.addTask {
                    let reply = try await self.client.eval(
                        RedisPresenceScripts.refresh, keys: self.keys(room),
                        arguments: [
                            RESPCommandArgument(now), RESPCommandArgument(now + self.ttlMilliseconds),
                            RESPCommandArgument(self.ttlMilliseconds * 2), RESPCommandArgument(self.node),
                        ] + users.map { RESPCommandArgument($0) },
                        affinity: room)
                    guard let parts = reply.array, parts.count == 2 else {
                        throw RedisError.protocolError("presence refresh answered \(reply)")
                    }
                    let restored = parts[0].array?.compactMap(\.string) ?? []
                    if !restored.isEmpty { self.observer.withLockedValue { $0 }?.presenceRestored(restored, in: room) }
                    self.report(gone: parts[1], room: room)
                }
            }
            try await group.waitForAll()
        }
    }

    /// Refreshes this node's entries every third of `entryTTL` until a graceful shutdown or
    /// cancellation. A refresh that fails is logged and tried again at the next turn.
    public func run() async throws {
        await time.everyTurn(of: entryTTL / 3, logger: logger, failure: "presence refresh failed") { try await self.refresh() }
    }
}
