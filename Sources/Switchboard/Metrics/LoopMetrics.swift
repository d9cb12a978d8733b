/// What one event loop counted since the server started: plain integers owned by the loop's
/// ``LoopHub`` and only touched on that loop, so that counting a delivery costs an add, not a lock
/// or an atomic. ``SwitchboardServer/metricsSnapshot()`` reads every loop's copy (on its loop) and
/// adds them up.
public struct LoopMetrics: Sendable, Equatable {
    /// Connections opened (upgraded and registered).
    public var connectionsOpened = 0
    /// Complete WebSocket messages received (text and binary).
    public var messagesIn = 0
    /// Frames queued for connections: room events, replies, replays, `state.refresh`.
    public var messagesOut = 0
    /// Bytes of those frames, headers included, as queued (before any compression).
    public var bytesOut = 0
    /// Room events handed to local members by the fan-out (one per recipient).
    public var deliveries = 0
    /// Events replayed to connections that resumed.
    public var replayedEvents = 0
    /// `state.refresh` snapshots sent instead of a replay.
    public var refreshes = 0
    /// Ended connections by close code (1006 when none was exchanged).
    public var closes: [UInt16: Int] = [:]
    /// How long message handlers took, from dispatch to reply.
    public var handlerLatency = LatencyBuckets()

    public init() {}

    /// The sum of two loops' counts.
    public static func + (lhs: LoopMetrics, rhs: LoopMetrics) -> LoopMetrics {
        var sum = lhs
        sum.connectionsOpened += rhs.connectionsOpened
        sum.messagesIn += rhs.messagesIn
        sum.messagesOut += rhs.messagesOut
        sum.bytesOut += rhs.bytesOut
        sum.deliveries += rhs.deliveries
        sum.replayedEvents += rhs.replayedEvents
        sum.refreshes += rhs.refreshes
        sum.closes.merge(rhs.closes, uniquingKeysWith: +)
        sum.handlerLatency = lhs.handlerLatency + rhs.handlerLatency
        return sum
    }
}

/// A latency histogram with fixed bucket bounds (the same on every loop, so loops add up bucket by
/// bucket): a count per bucket and the exact sum.
public struct LatencyBuckets: Sendable, Equatable {
    /// The upper bounds of the buckets, in nanoseconds: 100 µs to 10 s. A sample above the last
    /// falls in the overflow bucket (`+Inf`).
    public static let boundsNanoseconds: [Int64] = [
        100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000, 25_000_000, 50_000_000,
        100_000_000, 250_000_000, 500_000_000, 1_000_000_000, 2_500_000_000, 5_000_000_000, 10_000_000_000,
    ]

    /// Samples per bucket; the last is the overflow bucket.
    public private(set) var counts: [Int] = Array(repeating: 0, count: LatencyBuckets.boundsNanoseconds.count + 1)
    /// The sum of every sample, in nanoseconds.
    public private(set) var sumNanoseconds: Int64 = 0

    public init() {}

    /// The number of samples.
    public var count: Int { counts.reduce(0, +) }

    /// Adds one sample (a negative one counts as 0).
    public mutating func record(nanoseconds: Int64) {
        let value = max(nanoseconds, 0)
        var index = 0
        let bounds = Self.boundsNanoseconds
        while index < bounds.count, value > bounds[index] { index += 1 }
        counts[index] &+= 1
        sumNanoseconds &+= value
    }

    public static func + (lhs: LatencyBuckets, rhs: LatencyBuckets) -> LatencyBuckets {
        var sum = lhs
        for index in sum.counts.indices { sum.counts[index] += rhs.counts[index] }
        sum.sumNanoseconds &+= rhs.sumNanoseconds
        return sum
    }
}
