import Foundation

/// A clock that moves only when a test advances it: retention and expiry are tested without
/// waiting for them.
final class TestClock: Clock, @unchecked Sendable {
    // @unchecked Sendable: `current` is only touched under `lock`.
    struct Instant: InstantProtocol, Hashable, Comparable, Sendable {
        var offset: Duration

        func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        func duration(to other: Instant) -> Duration { other.offset - offset }
        static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
    }

    private let lock = NSLock()
    private var current = Instant(offset: .zero)

    var now: Instant {
        lock.lock()
        defer { lock.unlock() }
        return current
    }

    var minimumResolution: Duration { .nanoseconds(1) }

    func advance(by duration: Duration) {
        lock.lock()
        current = current.advanced(by: duration)
        lock.unlock()
    }

    /// Returns once the clock has been advanced to `deadline` (or the task is cancelled).
    func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        while now < deadline {
            try Task.checkCancellation()
            try await Task.sleep(nanoseconds: 1_000_000)
        }
    }
}
