import Atomics
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle

/// Message ids in this process's memory: per user, for a window, at most a number per user and in
/// all. Past the per-user bound the user's oldest id is forgotten; past the total bound new ids are
/// not remembered (their retries would be handled again), which keeps memory bounded whatever the
/// load. Expired ids go when their user is next seen, and for idle users by ``removeExpired()``,
/// which ``run()`` calls periodically when the store runs as a `Service`.
public final class InMemoryIdempotencyStore: IdempotencyStore, Service {
    public let window: Duration
    public let maxKeysPerUser: Int
    public let maxKeys: Int
    /// Time since the store was created, on its clock (a closure, not a generic parameter, so that
    /// the types of the message path need no metadata look-up at run time).
    private let now: @Sendable () -> Duration
    private let sleep: @Sendable (Duration) async throws -> Void
    private let shards: [NIOLockedValueBox<[String: UserKeys]>]
    private let keyCount = ManagedAtomic<Int>(0)

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
        let now = self.now()
        let window = self.window
        let maxKeysPerUser = self.maxKeysPerUser
        let underTotal = keyCount.load(ordering: .relaxed) < maxKeys
        var delta = 0
        let claim = shard(of: key.user).withLockedValue { users -> IdempotencyClaim in
            var keys = users.removeValue(forKey: key.user) ?? UserKeys()
            defer { if !keys.order.isEmpty { users[key.user] = keys } }
            delta -= Self.dropExpired(from: &keys, now: now)
            if let record = keys.records[key.id] {
                guard record.fingerprint == fingerprint else { return .conflict }
                switch record.state {
                case .done(let reply):
                    return .replied(reply)
                case .pending(var waiters):
                    let promise = eventLoop.makePromise(of: ByteBuffer.self)
                    waiters.append(promise)
                    keys.records[key.id]?.state = .pending(waiters)
                    return .inProgress(promise.futureResult)
                }
            }
            guard underTotal else { return .first }
            while keys.order.count >= maxKeysPerUser, let oldest = keys.order.popFirst() {
                if keys.records.removeValue(forKey: oldest) != nil { delta -= 1 }
            }
            keys.records[key.id] = UserKeys.Record(fingerprint: fingerprint, state: .pending([]), expiresAt: now + window)
            keys.order.append(key.id)
            delta += 1
            return .first
        }
        if delta != 0 { keyCount.wrappingIncrement(by: delta, ordering: .relaxed) }
        return eventLoop.makeSucceededFuture(claim)
    }

    public func complete(_ key: IdempotencyKey, reply: ByteBuffer, remember: Bool) {
        var forgotten = false
        let waiters = shard(of: key.user).withLockedValue { users -> [EventLoopPromise<ByteBuffer>] in
            guard let record = users[key.user]?.records[key.id], case .pending(let waiters) = record.state else { return [] }
            if remember {
                users[key.user]?.records[key.id]?.state = .done(reply)
            } else {
                users[key.user]?.records.removeValue(forKey: key.id)
                forgotten = true
                // Its place in `order` goes when it comes to the front.
            }
            return waiters
        }
        if forgotten { keyCount.wrappingDecrement(ordering: .relaxed) }
        for waiter in waiters { waiter.succeed(reply) }
    }

    /// Drops the ids whose window has passed, from the front of the claim order; returns how many
    /// records went. An id still pending stays until it completes.
    private static func dropExpired(from keys: inout UserKeys, now: Duration) -> Int {
        var dropped = 0
        while let oldest = keys.order.first {
            guard let record = keys.records[oldest] else {
                keys.order.removeFirst()
                continue
            }
            guard record.expiresAt <= now, case .done = record.state else { break }
            keys.order.removeFirst()
            keys.records.removeValue(forKey: oldest)
            dropped += 1
        }
        return dropped
    }

    /// Forgets every id whose window has passed.
    public func removeExpired() {
        let now = self.now()
        var dropped = 0
        for shard in shards {
            shard.withLockedValue { users in
                for user in Array(users.keys) {
                    guard var keys = users.removeValue(forKey: user) else { continue }
                    dropped += Self.dropExpired(from: &keys, now: now)
                    if !keys.order.isEmpty { users[user] = keys }
                }
            }
        }
        if dropped > 0 { keyCount.wrappingDecrement(by: dropped, ordering: .relaxed) }
    }

    /// Runs ``removeExpired()`` every tenth of the window (between 1 s and 1 min) until cancelled or
    /// the service group shuts down.
    public func run() async throws {
        let interval = min(max(window / 10, .seconds(1)), .seconds(60))
        let sleep = self.sleep
        // Cancelled, sleep included, as soon as the service group shuts down.
        do {
            try await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    try await sleep(interval)
                    self.removeExpired()
                }
            }
        } catch is CancellationError {
            // Shutting down: a normal end.
        }
    }
}

/// The ids of one user in the in-memory idempotency store.
struct IdempotencyUserKeys {
    enum State {
        case pending([EventLoopPromise<ByteBuffer>])
        case done(ByteBuffer)
    }

    struct Record {
        let fingerprint: UInt64
        var state: State
        /// As time since the store was created.
        let expiresAt: Duration
    }

    var records: [String: Record] = [:]
    /// Ids in the order they were claimed, for expiry and eviction.
    var order = CircularBuffer<String>()
}
