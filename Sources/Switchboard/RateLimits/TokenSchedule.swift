/// One token bucket as a single timestamp (the generic cell rate algorithm): the time at which
/// the bucket would be full again if nothing more were taken. Taking a token moves it one
/// interval on; the bucket is empty when it runs more than `tolerance` ahead of now. Eight bytes
/// per bucket, and nothing to refill: what a connection or an address keeps is one `Int64`.
enum TokenSchedule {
    /// The timestamp of a bucket that has never been used: a full one.
    static let full = Int64.min

    /// Takes a token from the bucket `schedule` at time `now` (nanoseconds): `nil` when it was
    /// taken, or the nanoseconds until one will be there (the bucket is left as it was).
    static func take(_ schedule: inout Int64, interval: Int64, tolerance: Int64, now: Int64) -> Int64? {
        let start = max(schedule, now)
        let ahead = start - now
        guard ahead <= tolerance else { return ahead - tolerance }
        schedule = start + interval
        return nil
    }

    /// Whether a bucket with this timestamp is full at `now`: it can be forgotten.
    static func isFull(_ schedule: Int64, now: Int64) -> Bool {
        schedule <= now
    }

    /// Whole milliseconds, rounded up, at least 1: what a client is told to wait.
    static func milliseconds(_ nanoseconds: Int64) -> Int64 {
        max((nanoseconds + 999_999) / 1_000_000, 1)
    }

    /// Whole seconds, rounded up, at least 1: the HTTP `Retry-After`.
    static func seconds(_ nanoseconds: Int64) -> Int64 {
        max((nanoseconds + 999_999_999) / 1_000_000_000, 1)
    }

    /// A duration in nanoseconds, saturating rather than overflowing.
    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? Int64.min / 2 : Int64.max / 2 }
        return whole &+ attoseconds / 1_000_000_000
    }
}
