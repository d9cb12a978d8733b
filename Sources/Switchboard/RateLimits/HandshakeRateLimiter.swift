import NIOConcurrencyHelpers
import NIOCore

/// The handshake limit per remote address (``RateLimits/handshakesPerAddress``): one token bucket
/// (one timestamp) per address, in shards with a lock each, so that concurrent handshakes from
/// different addresses rarely wait on one another. Memory is bounded by
/// ``RateLimits/maxTrackedAddresses``: a full bucket is the same as none, so full ones are
/// forgotten first when a shard is at its bound.
final class HandshakeRateLimiter: Sendable {
    private let interval: Int64
    private let tolerance: Int64
    private let exemptLoopback: Bool
    private let shardCapacity: Int
    private let shards: [NIOLockedValueBox<[RemoteAddressKey: Int64]>]

    /// `nil` when `limits` has no handshake limit.
    init?(_ limits: RateLimits, shardCount: Int = 16) {
        guard let limit = limits.handshakesPerAddress else { return nil }
        (interval, tolerance) = limit.schedule
        exemptLoopback = limits.exemptLoopback
        shardCapacity = max(limits.maxTrackedAddresses / shardCount, 1)
        shards = (0..<shardCount).map { _ in NIOLockedValueBox([:]) }
    }

    /// Takes a token for a handshake from `address` at `now` (nanoseconds): `nil` when admitted
    /// (also when the address is exempt or unknown), or the nanoseconds until it may try again.
    func admit(_ address: SocketAddress?, now: Int64) -> Int64? {
        guard let address, let classified = RemoteAddressKey.of(address) else { return nil }
        if exemptLoopback, classified.isLoopback { return nil }
        let key = classified.key
        let capacity = shardCapacity
        let (interval, tolerance) = (interval, tolerance)
        return shard(of: key).withLockedValue { buckets -> Int64? in
            if let index = buckets.index(forKey: key) {
                return TokenSchedule.take(&buckets.values[index], interval: interval, tolerance: tolerance, now: now)
            }
            var schedule = TokenSchedule.full
            if let retryAfter = TokenSchedule.take(&schedule, interval: interval, tolerance: tolerance, now: now) {
                return retryAfter  // a burst of 0 cannot be configured (RateLimit clamps it to 1); kept for safety
            }
            if buckets.count >= capacity {
                Self.makeRoom(in: &buckets, capacity: capacity, now: now)
            }
            buckets[key] = schedule
            return nil
        }
    }

    /// Forgets the full buckets; if that frees less than an eighth of the shard, arbitrary ones
    /// too, so that a shard kept at its bound by a flood of addresses is swept once per eighth of
    /// its capacity, not on every handshake. An address forgotten while its bucket was not full
    /// starts with a full one: past the bound the limit errs on the side of letting clients in.
    private static func makeRoom(in buckets: inout [RemoteAddressKey: Int64], capacity: Int, now: Int64) {
        buckets = buckets.filter { !TokenSchedule.isFull($0.value, now: now) }
        let target = capacity - max(capacity / 8, 1)
        while buckets.count > target, let first = buckets.indices.first {
            buckets.remove(at: first)
        }
    }

    /// Addresses remembered, over all shards (for tests).
    var trackedAddresses: Int {
        shards.reduce(0) { total, shard in total + shard.withLockedValue { $0.count } }
    }

    private func shard(of key: RemoteAddressKey) -> NIOLockedValueBox<[RemoteAddressKey: Int64]> {
        var hasher = Hasher()
        hasher.combine(key)
        return shards[Int(UInt(bitPattern: hasher.finalize()) % UInt(shards.count))]
    }
}
