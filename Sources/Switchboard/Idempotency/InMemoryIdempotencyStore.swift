import Atomics
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle

/// Message ids in this process's memory: per user, for a window, within a bound per user and in
/// all. Per user, ids live in two generations (see `IdempotencyUserKeys`): at least the last half
/// of the per-user bound is always remembered, and forgetting costs nothing per message. Past the
/// total bound new ids are not remembered (their retries would be handled again), which keeps
/// memory bounded whatever the load. Users idle for a whole window are dropped a shard at a time as
/// the store is used, and by ``removeExpired()``, which ``run()`` calls periodically when the store
/// runs as a `Service`.
public final class InMemoryIdempotencyStore: SynchronousIdempotencyStore, Service {
    public let window: Duration
    public let maxKeysPerUser: Int
    public let maxKeys: Int
    /// Time since the store was created, on its clock (a closure, not a generic parameter, so that
    /// the types of the message path need no metadata look-up at run time).
    private let now: @Sendable () -> Duration
    private let sleep: @Sendable (Duration) async throws -> Void
    private let shards: [NIOLockedValueBox<[String: UserKeys]>]
    private let keyCount = ManagedAtomic<Int>(0)
    /// Expiry spread over claims, so that an app that never runs the store as a service still
    /// forgets idle users.
    private let sweep: ShardSweep

    typealias UserKeys = IdempotencyUserKeys

    /// Creates a store remembering ids for `window`, at most `maxKeysPerUser` per user and
    /// `maxKeys` in all, telling time by `clock`.
    public init<C: Clock & Sendable>(window: Duration = .seconds(600), maxKeysPerUser: Int = 1000, maxKeys: Int = 100_000, clock: C)
    where C.Duration == Duration {
        self.window = window
        self.maxKeysPerUser = max(maxKeysPerUser, 1)
        self.maxKeys = max(maxKeys, 1)
        let start = clock.now
        self.now = { start.duration(to: clock.now) }
        self.sleep = { try await clock.sleep(for: $0) }
        self.shards = (0..<64).map { _ in NIOLockedValueBox([:]) }
        self.sweep = ShardSweep(period: window, shardCount: 64)
    }

    /// A store on the system's monotonic clock.
    public convenience init(window: Duration = .seconds(600), maxKeysPerUser: Int = 1000, maxKeys: Int = 100_000) {
        self.init(window: window, maxKeysPerUser: maxKeysPerUser, maxKeys: maxKeys, clock: ContinuousClock())
    }

    private func shard(of user: String) -> NIOLockedValueBox<[String: UserKeys]> {
        var hasher = Hasher()
        hasher.combine(user)
        return shards[Int(UInt(bitPattern: hasher.finalize()) % UInt(shards.count))]
    }

    /// Ids remembered now, for tests and metrics.
    public var count: Int { keyCount.load(ordering: .relaxed) }

    public func claim(_ key: IdempotencyKey, fingerprint: UInt64, on eventLoop: any EventLoop) -> EventLoopFuture<IdempotencyClaim> {
        eventLoop.makeSucceededFuture(claimNow(key, fingerprint: fingerprint, on: eventLoop))
    }

    public func claimNow(_ key: IdempotencyKey, fingerprint: UInt64, on eventLoop: any EventLoop) -> IdempotencyClaim {
        let now = self.now()
        let window = self.window
        let generationSize = max(1, maxKeysPerUser / 2)
        let underTotal = keyCount.load(ordering: .relaxed) < maxKeys
        var delta = 0
        let claim = shard(of: key.user).withLockedValue { users -> IdempotencyClaim in
            // Mutated in place through the default subscript: one lookup, no copy.
            Self.claim(
                UserKeys.key(of: key.id), fingerprint: fingerprint, in: &users[key.user, default: UserKeys(since: now)],
                now: now, window: window, generationSize: generationSize, remember: underTotal, delta: &delta, eventLoop: eventLoop)
        }
        if delta != 0 { keyCount.wrappingIncrement(by: delta, ordering: .relaxed) }
        if let index = sweep.due(at: now) { removeExpired(inShard: index) }
        return claim
    }

    private static func claim(
        _ id: UserKeys.Key,
        fingerprint: UInt64,
        in keys: inout UserKeys,
        now: Duration,
        window: Duration,
        generationSize: Int,
        remember: Bool,
        delta: inout Int,
        eventLoop: any EventLoop
    ) -> IdempotencyClaim {
        if let record = keys.record(id, now: now) {
            guard record.fingerprint == fingerprint else { return .conflict }
            switch record.state {
            case .done(let reply):
                return .replied(reply)
            case .pending(var waiters):
                let promise = eventLoop.makePromise(of: ByteBuffer.self)
                waiters.append(promise)
                keys.update(id) { $0.state = .pending(waiters) }
                return .inProgress(promise.futureResult)
            }
        }
        guard remember else { return .first }
        delta -= keys.rotateIfNeeded(now: now, window: window, generationSize: generationSize)
        keys.current[id] = UserKeys.Record(fingerprint: fingerprint, state: .pending([]), expiresAt: now + window)
        keys.lastClaim = now
        delta += 1
        return .first
    }

    public func complete(_ key: IdempotencyKey, reply: ByteBuffer, remember: Bool) {
        let outcome = shard(of: key.user).withLockedValue { users in
            // In place through optional chaining: one lookup of the user, one of the id.
            users[key.user]?.complete(UserKeys.key(of: key.id), reply: reply, remember: remember)
        }
        guard let outcome else { return }
        if outcome.forgotten { keyCount.wrappingDecrement(ordering: .relaxed) }
        for waiter in outcome.waiters { waiter.succeed(reply) }
    }

    /// Forgets every id whose window has passed: the users with no claim for a whole window go,
    /// with all their ids (but those still being handled). The store also does this itself, a
    /// shard at a time, as ids are claimed (see ``ShardSweep``).
    public func removeExpired() {
        for index in shards.indices { removeExpired(inShard: index) }
    }

    private func removeExpired(inShard index: Int) {
        let now = self.now()
        let window = self.window
        var dropped = 0
        shards[index].withLockedValue { users in
            for user in Array(users.keys) {
                guard var keys = users.removeValue(forKey: user) else { continue }
                if now - keys.lastClaim >= window {
                    dropped += keys.dropAllButPending()
                }
                if !keys.isEmpty { users[user] = keys }
            }
        }
        if dropped > 0 { keyCount.wrappingDecrement(by: dropped, ordering: .relaxed) }
    }

    /// Runs ``removeExpired()`` every tenth of the window (between 1 s and 1 min) until cancelled or
    /// the service group shuts down.
    public func run() async throws {
        await ExpirySweep.run(period: window, sleep: sleep) { self.removeExpired() }
    }
}

/// The ids of one user in the in-memory idempotency store, in two generations: new ids go into
/// `current`; when it is full (half the per-user bound) or a window old, it becomes `previous` and
/// the old `previous` is dropped whole. So forgetting costs nothing per message (no dictionary
/// deletions on the message path), an id is remembered at least its window unless the user sent
/// more than the bound meanwhile, and memory stays within the bound.
///
/// Ids are kept by a 64-bit hash of their bytes (``key(of:)``), not as strings: a lookup then
/// compares integers instead of hashing and comparing the id's text in every probed bucket, and a
/// record holds no string. Two ids of one user would have to share the hash within the window to be
/// taken for each other (about one chance in 10^13 for 1000 ids), and then a different message is
/// still told apart by its fingerprint (`idempotency_conflict`).
struct IdempotencyUserKeys {
    typealias Key = UInt64

    /// FNV-1a (64-bit) of the id's UTF-8 bytes.
    static func key(of id: String) -> Key {
        var hash = FNV1a()
        hash.add(id)
        return hash.value
    }

    enum State {
        case pending([EventLoopPromise<ByteBuffer>])
        case done(ByteBuffer)
    }

    struct Record {
        let fingerprint: UInt64
        var state: State
        /// As time since the store was created.
        let expiresAt: Duration

        var isPending: Bool {
            if case .pending = state { return true }
            return false
        }
    }

    var current: [Key: Record] = [:]
    var previous: [Key: Record] = [:]
    /// When `current` was started.
    var since: Duration
    /// When the user last claimed an id.
    var lastClaim: Duration

    init(since: Duration) {
        self.since = since
        self.lastClaim = since
    }

    var isEmpty: Bool { current.isEmpty && previous.isEmpty }

    /// The record of `id`, if remembered and (with `now`) not expired; a pending one never expires.
    func record(_ id: Key, now: Duration?) -> Record? {
        guard let record = current[id] ?? previous[id] else { return nil }
        if let now, record.expiresAt <= now, !record.isPending { return nil }
        return record
    }

    mutating func update(_ id: Key, _ change: (inout Record) -> Void) {
        if var record = current[id] {
            change(&record)
            current[id] = record
        } else if var record = previous[id] {
            change(&record)
            previous[id] = record
        }
    }

    /// Ends a pending record: keeps `reply` for retries (`remember`) or forgets the id. Returns the
    /// retries waiting on it, and whether the id was forgotten; `nil` when it was not pending.
    mutating func complete(_ id: Key, reply: ByteBuffer, remember: Bool) -> (waiters: [EventLoopPromise<ByteBuffer>], forgotten: Bool)? {
        if let outcome = Self.complete(id, in: &current, reply: reply, remember: remember) { return outcome }
        return Self.complete(id, in: &previous, reply: reply, remember: remember)
    }

    private static func complete(
        _ id: Key, in records: inout [Key: Record], reply: ByteBuffer, remember: Bool
    ) -> (waiters: [EventLoopPromise<ByteBuffer>], forgotten: Bool)? {
        guard let index = records.index(forKey: id), case .pending(let waiters) = records.values[index].state else { return nil }
        if remember {
            records.values[index].state = .done(reply)
            return (waiters, false)
        }
        records.remove(at: index)
        return (waiters, true)
    }

    /// Starts a new generation when `current` is full or a window old; returns the ids dropped.
    mutating func rotateIfNeeded(now: Duration, window: Duration, generationSize: Int) -> Int {
        guard current.count >= generationSize || now - since >= window else { return 0 }
        // Ids still being handled survive the rotation: their retries wait on them.
        var carried: [Key: Record] = [:]
        // Sized for as many ids as the generation that just ended: no growth (and rehash) step
        // by step while the next one fills up at the same rate.
        carried.reserveCapacity(min(current.count, generationSize))
        for (id, record) in previous where record.isPending { carried[id] = record }
        let dropped = previous.count - carried.count
        previous = current
        current = carried
        since = now
        return dropped
    }

    /// Drops every record but the pending ones; returns how many went.
    mutating func dropAllButPending() -> Int {
        let before = current.count + previous.count
        current = current.filter { $0.value.isPending }
        previous = previous.filter { $0.value.isPending }
        return before - current.count - previous.count
    }
}
