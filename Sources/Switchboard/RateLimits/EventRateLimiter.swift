/// The per-connection event limits of a server, compiled from ``RateLimits``: which bucket each
/// event takes from, and each bucket's schedule. A connection keeps one timestamp per bucket
/// (``Socket/rateBuckets``), made on its first limited event; the check runs on the connection's
/// event loop, without a lock.
struct EventRateLimiter: Sendable {
    /// What the limiter says about one event.
    enum Verdict: Equatable {
        case allowed
        /// Refused; a token is there again after `retryAfter` nanoseconds.
        case limited(retryAfter: Int64)
        /// Refused, and the connection has been refused too often: close it.
        case abusive
    }

    /// The bucket of each named event; ``exempt`` for events never limited.
    private let bucketOfEvent: [String: Int]
    /// The bucket of every other event, or ``exempt``.
    private let otherBucket: Int
    /// Interval and tolerance (``RateLimit/schedule``) of each bucket, the strikes bucket last.
    private let intervals: [Int64]
    private let tolerances: [Int64]
    /// The bucket limited events take from (sustained abuse), or ``exempt``.
    private let strikesBucket: Int
    /// Whether any event is limited at all.
    let isEnabled: Bool

    private static let exempt = -1

    init(_ limits: RateLimits) {
        var bucketOfEvent: [String: Int] = [:]
        var intervals: [Int64] = []
        var tolerances: [Int64] = []
        func add(_ limit: RateLimit) -> Int {
            let schedule = limit.schedule
            intervals.append(schedule.interval)
            tolerances.append(schedule.tolerance)
            return intervals.count - 1
        }
        // Sorted, so that bucket numbers do not depend on the dictionary's order.
        for (event, limit) in limits.events.sorted(by: { $0.key < $1.key }) where !limits.exemptEvents.contains(event) {
            bucketOfEvent[event] = add(limit)
        }
        for event in limits.exemptEvents {
            bucketOfEvent[event] = Self.exempt
        }
        otherBucket = limits.otherEvents.map(add) ?? Self.exempt
        isEnabled = !intervals.isEmpty
        strikesBucket = isEnabled ? limits.closeAfterLimited.map(add) ?? Self.exempt : Self.exempt
        self.bucketOfEvent = bucketOfEvent
        self.intervals = intervals
        self.tolerances = tolerances
    }

    /// Takes a token for `event` from `buckets` (a connection's, empty until its first limited
    /// event); `now` (nanoseconds) is read only for an event that is limited.
    func check(_ event: String, buckets: inout [Int64], now: () -> Int64) -> Verdict {
        guard isEnabled else { return .allowed }
        let bucket = bucketOfEvent[event] ?? otherBucket
        guard bucket != Self.exempt else { return .allowed }
        if buckets.isEmpty {
            buckets = Array(repeating: TokenSchedule.full, count: intervals.count)
        }
        let time = now()
        guard let retryAfter = TokenSchedule.take(&buckets[bucket], interval: intervals[bucket], tolerance: tolerances[bucket], now: time) else {
            return .allowed
        }
        if strikesBucket != Self.exempt,
            TokenSchedule.take(&buckets[strikesBucket], interval: intervals[strikesBucket], tolerance: tolerances[strikesBucket], now: time) != nil
        {
            return .abusive
        }
        return .limited(retryAfter: retryAfter)
    }
}
