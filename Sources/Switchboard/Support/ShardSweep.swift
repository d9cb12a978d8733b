import Atomics

/// An expiry sweep spread over a sharded store's own operations: every `interval / shardCount`
/// one operation is told to sweep the next shard, so the whole store is swept once per interval
/// while it is in use, with no timer and no service to run. What expires while nothing happens
/// waits for the next operation (or for the store's `Service`, when an app runs it): an idle store
/// does not grow.
///
/// The hot path pays one relaxed atomic load and a comparison.
struct ShardSweep: Sendable {
    let shardCount: Int
    /// Nanoseconds of the store's clock between two shards' turns.
    private let step: Int64
    private let nextDue: ManagedAtomic<Int64>
    private let nextShard: ManagedAtomic<Int>

    /// A sweep of `shardCount` shards, each once per `interval` (at least 1 s, at most 1 min, as
    /// the stores' services do: see ``ExpirySweep``).
    init(period: Duration, shardCount: Int) {
        self.shardCount = max(shardCount, 1)
        let interval = ExpirySweep.interval(for: period)
        self.step = max(Self.nanoseconds(interval) / Int64(self.shardCount), 1)
        self.nextDue = ManagedAtomic(self.step)
        self.nextShard = ManagedAtomic(0)
    }

    /// The shard the caller should sweep now, or `nil` (almost always). At most one caller gets
    /// each turn.
    func due(at now: Duration) -> Int? {
        let now = Self.nanoseconds(now)
        let due = nextDue.load(ordering: .relaxed)
        guard now >= due else { return nil }
        guard nextDue.compareExchange(expected: due, desired: now + step, ordering: .relaxed).exchanged else { return nil }
        return Int(UInt(bitPattern: nextShard.loadThenWrappingIncrement(ordering: .relaxed)) % UInt(shardCount))
    }

    private static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds &* 1_000_000_000 &+ attoseconds / 1_000_000_000
    }
}
