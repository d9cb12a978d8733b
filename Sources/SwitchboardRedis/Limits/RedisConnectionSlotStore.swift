import Atomics
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import Switchboard

/// A ``ConnectionSlotStore`` shared by every node on one Redis: the per-user connection limit
/// holds over all nodes together.
///
/// A user's slots are one sorted set (`<prefix>{user:<id>}:connections`) of `<node>:<token>`
/// scored by the time (Unix ms) the slot expires unless its node refreshes it. Taking a slot is one
/// script (``RedisConnectionSlotScripts/acquire``) that first drops expired slots, so a node that
/// dies without giving its slots back (kill -9) holds them for at most `slotTTL`. The node
/// refreshes the slots it holds every third of `slotTTL` (``run()``).
///
/// While Redis cannot be reached the node goes on accepting connections, with the limit counted
/// on this node alone (logged); the next refresh after Redis is back adds those slots there.
public final class RedisConnectionSlotStore: ConnectionSlotStore, Service {
    public let client: RedisClient
    public let keyPrefix: String
    /// How long a slot outlives its node's last refresh. Default 30 s.
    public let slotTTL: Duration
    private let node = NodeTime.nodeID()
    private let time: NodeTime
    private let nextToken = ManagedAtomic<UInt64>(0)
    /// The slots this node holds, per user, for the refresh.
    private let held = NIOLockedValueBox<[String: Set<UInt64>]>([:])
    /// Slots given back whose removal Redis has not confirmed yet, per user: the shutdown
    /// (``run()`` ending) removes them again.
    private let releasing = NIOLockedValueBox<[String: Set<UInt64>]>([:])
    private let logger: Logger

    public init<C: Clock & Sendable>(
        client: RedisClient,
        keyPrefix: String = "switchboard:",
        slotTTL: Duration = .seconds(30),
        clock: C,
        logger: Logger = Logger(label: "switchboard.redis.slots")
    ) where C.Duration == Duration {
        self.client = client
        self.keyPrefix = keyPrefix
        self.slotTTL = slotTTL
        self.time = NodeTime(clock: clock)
        self.logger = logger
    }

    /// A store on the system's clock.
    public convenience init(
        client: RedisClient, keyPrefix: String = "switchboard:", slotTTL: Duration = .seconds(30),
        logger: Logger = Logger(label: "switchboard.redis.slots")
    ) {
        self.init(client: client, keyPrefix: keyPrefix, slotTTL: slotTTL, clock: ContinuousClock(), logger: logger)
    }

    func key(_ user: String) -> RESPCommandArgument { RESPCommandArgument("\(keyPrefix){user:\(user)}:connections") }
    private func member(_ token: UInt64) -> RESPCommandArgument { RESPCommandArgument("\(node):\(token)") }
    private var ttlMilliseconds: Int64 { NodeTime.milliseconds(slotTTL) }

    public func acquire(_ user: String, limit: Int) async throws -> ConnectionSlot? {
        let token = nextToken.loadThenWrappingIncrement(ordering: .relaxed)
        let now = time.now()
        let reply: RESPValue
        do {
            reply = try await client.eval(
                RedisConnectionSlotScripts.acquire, keys: [key(user)],
                arguments: [
                    RESPCommandArgument(now), RESPCommandArgument(now + ttlMilliseconds), member(token),
                    RESPCommandArgument(limit), RESPCommandArgument(ttlMilliseconds * 2),
                ],
                affinity: user)
        } catch let error as RedisError {
            // Redis unreachable: the node goes on serving, with the limit counted on this node
            // alone. The next refresh puts the slot in Redis.
            logger.warning("connection limit counted on this node only", metadata: ["user": "\(user)", "error": "\(error)"])
            let taken = held.withLockedValue { held -> Bool in
                guard held[user, default: []].count < limit else { return false }
                held[user, default: []].insert(token)
                return true
            }
            return taken ? ConnectionSlot(user: user, token: token) : nil
        }
        guard let taken = reply.int else { throw RedisError.protocolError("slot acquire answered \(reply)") }
        guard taken == 1 else { return nil }
        held.withLockedValue { _ = $0[user, default: []].insert(token) }
        return ConnectionSlot(user: user, token: token)
    }

    public func release(_ slot: ConnectionSlot) {
        held.withLockedValue { held in
            held[slot.user]?.remove(slot.token)
            if held[slot.user]?.isEmpty == true { held.removeValue(forKey: slot.user) }
        }
        releasing.withLockedValue { _ = $0[slot.user, default: []].insert(slot.token) }
        let command = RESPCommand("ZREM", key(slot.user), member(slot.token))
        Task {
            do {
                _ = try await client.send(command, affinity: slot.user)
                releasing.withLockedValue { releasing in
                    releasing[slot.user]?.remove(slot.token)
                    if releasing[slot.user]?.isEmpty == true { releasing.removeValue(forKey: slot.user) }
                }
            } catch {
                // Not given back now: the slot expires once this node stops refreshing it.
                logger.warning("connection slot not released", metadata: ["user": "\(slot.user)", "error": "\(error)"])
            }
        }
    }

    public func count(of user: String) async throws -> Int {
        let reply: RESPValue
        do {
            reply = try await client.eval(
                RedisConnectionSlotScripts.count, keys: [key(user)], arguments: [RESPCommandArgument(time.now())], affinity: user)
        } catch is RedisError {
            // As in `acquire`: while Redis is unreachable the limit is this node's count, so the
            // handshake check (a GET of the WebSocket path) says what a handshake would get.
            return held.withLockedValue { $0[user]?.count ?? 0 }
        }
        guard let count = reply.int else { throw RedisError.protocolError("slot count answered \(reply)") }
        return count
    }

    /// Moves the expiry of every slot this node holds on (one `ZADD` per user, pipelined).
    /// ``run()`` calls it every third of `slotTTL`.
    public func refresh() async throws {
        let users = held.withLockedValue { $0 }
        let expiry = RESPCommandArgument(time.now() + ttlMilliseconds)
        let keyTTL = RESPCommandArgument(ttlMilliseconds * 2)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (user, tokens) in users {
                group.addTask {
                    var arguments = [self.key(user)]
                    for token in tokens { arguments += [expiry, self.member(token)] }
                    _ = try await self.client.send(RESPCommand("ZADD", arguments: arguments), affinity: user)
                    _ = try await self.client.send(RESPCommand("PEXPIRE", self.key(user), keyTTL), affinity: user)
                }
            }
            try await group.waitForAll()
        }
    }

    /// Refreshes this node's slots every third of `slotTTL` until a graceful shutdown or
    /// cancellation. A refresh that fails is logged and tried again at the next turn. Then it
    /// gives back every slot the node still holds or is giving back (``releaseAll()``): run it in
    /// a service group after the command pool's owner (as `serve` does: services shut down in
    /// reverse order), so the pool is still open then, and the users of a node that is shut down
    /// (a rolling restart) can connect again on the others at once instead of after `slotTTL`.
    public func run() async throws {
        await time.everyTurn(of: slotTTL / 3, logger: logger, failure: "connection slot refresh failed") { try await self.refresh() }
        await releaseAll()
    }

    /// Removes from Redis every slot this node holds or has given back without a confirmation
    /// (one `ZREM` per user, concurrently), and forgets them: for a node that stops serving.
    /// Failures are logged: those slots expire within `slotTTL`.
    public func releaseAll() async {
        let held = self.held.withLockedValue { held in
            defer { held = [:] }
            return held
        }
        let slots = releasing.withLockedValue { releasing in
            defer { releasing = [:] }
            return held.merging(releasing) { $0.union($1) }
        }
        guard !slots.isEmpty else { return }
        await withTaskGroup(of: Void.self) { group in
            for (user, tokens) in slots {
                group.addTask {
                    do {
                        _ = try await self.client.send(RESPCommand("ZREM", arguments: [self.key(user)] + tokens.map { self.member($0) }), affinity: user)
                    } catch {
                        self.logger.warning("connection slots not given back at shutdown", metadata: ["user": "\(user)", "error": "\(error)"])
                    }
                }
            }
        }
    }
}

/// The Lua scripts of ``RedisConnectionSlotStore``.
enum RedisConnectionSlotScripts {
    /// KEYS: the user's slots. ARGV: now ms, expiry ms, member, limit, key TTL ms. Returns 1 when
    /// the slot was taken, 0 when the user holds `limit` unexpired slots.
    static let acquire = RedisScript(
        """
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
        if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
        redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
        redis.call('PEXPIRE', KEYS[1], ARGV[5])
        return 1
        """)

    /// KEYS: the user's slots. ARGV: now ms. Returns the unexpired slots' count.
    static let count = RedisScript(
        """
        return redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[1], '+inf')
        """)
}
