import Atomics
import NIOConcurrencyHelpers

/// Connection slots in this process's memory: one count per user, in shards with a lock each.
public final class InMemoryConnectionSlotStore: ConnectionSlotStore {
    private let shards: [NIOLockedValueBox<[String: Int]>]
    private let nextToken = ManagedAtomic<UInt64>(0)

    public init() {
        self.shards = (0..<16).map { _ in NIOLockedValueBox([:]) }
    }

    private func shard(of user: String) -> NIOLockedValueBox<[String: Int]> {
        var hasher = Hasher()
        hasher.combine(user)
        return shards[Int(UInt(bitPattern: hasher.finalize()) % UInt(shards.count))]
    }

    public func acquire(_ user: String, limit: Int) -> ConnectionSlot? {
        let taken = shard(of: user).withLockedValue { counts in
            let current = counts[user, default: 0]
            guard current < limit else { return false }
            counts[user] = current + 1
            return true
        }
        guard taken else { return nil }
        return ConnectionSlot(user: user, token: nextToken.loadThenWrappingIncrement(ordering: .relaxed))
    }

    public func release(_ slot: ConnectionSlot) {
        shard(of: slot.user).withLockedValue { counts in
            let remaining = counts[slot.user, default: 0] - 1
            counts[slot.user] = remaining > 0 ? remaining : nil
        }
    }

    public func count(of user: String) -> Int {
        shard(of: user).withLockedValue { $0[user, default: 0] }
    }
}
