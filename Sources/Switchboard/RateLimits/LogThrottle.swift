import Atomics

/// Lets one log record of a kind through per interval and counts the ones it holds back, so that
/// a flood (of limited events, of refused handshakes) is visible in the logs without becoming a
/// flood of log lines.
struct LogThrottle: Sendable {
    private let interval: Int64
    private let nextDue = ManagedAtomic<Int64>(TokenSchedule.full)
    private let heldBack = ManagedAtomic<Int>(0)

    init(interval: Duration) {
        self.interval = max(TokenSchedule.nanoseconds(interval), 1)
    }

    /// At `now` (nanoseconds): `nil` when the record is to be dropped (and is counted), otherwise
    /// how many were dropped since the last one let through.
    func admit(now: Int64) -> Int? {
        let due = nextDue.load(ordering: .relaxed)
        if now >= due, nextDue.compareExchange(expected: due, desired: now + interval, ordering: .relaxed).exchanged {
            return heldBack.exchange(0, ordering: .relaxed)
        }
        heldBack.wrappingIncrement(ordering: .relaxed)
        return nil
    }
}
