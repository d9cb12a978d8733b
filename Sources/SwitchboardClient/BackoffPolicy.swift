/// How long the client waits before reconnecting after a failed or dropped connection.
///
/// The base delay doubles from ``initial`` on each consecutive failure, up to ``maximum``; the
/// jitter is applied **after** the cap, so that clients that all reached the cap still spread out
/// (a delay is the capped base times a random factor in `1 - jitter ... 1`); no delay is below
/// ``floor``, even when a server accepts and closes at once. The count of failures starts again
/// once a connection has stayed open for ``resetAfter``.
public struct BackoffPolicy: Sendable, Equatable {
    /// The base delay after the first failure.
    public var initial: Duration
    /// The cap of the base delay.
    public var maximum: Duration
    /// The share of the delay that is random, `0 ... 1`.
    public var jitter: Double
    /// No reconnect happens sooner than this.
    public var floor: Duration
    /// A connection open at least this long resets the failure count.
    public var resetAfter: Duration
    /// After 1001 (server going away) and 1012 (server restart), the first reconnect waits a
    /// random delay in this range instead of the backoff.
    public var prompt: ClosedRange<Duration>

    /// 1 s doubling to 30 s, half of it random, 100 ms floor, reset after 10 s open; 100 ms to 1 s
    /// after a server restart.
    public init(
        initial: Duration = .seconds(1),
        maximum: Duration = .seconds(30),
        jitter: Double = 0.5,
        floor: Duration = .milliseconds(100),
        resetAfter: Duration = .seconds(10),
        prompt: ClosedRange<Duration> = .milliseconds(100)...(.seconds(1))
    ) {
        self.initial = initial
        self.maximum = maximum
        self.jitter = min(max(jitter, 0), 1)
        self.floor = floor
        self.resetAfter = resetAfter
        self.prompt = prompt
    }

    /// The base delay (before jitter) after `failures` consecutive failures (`0`: the first).
    public func baseDelay(afterFailures failures: Int) -> Duration {
        var delay = initial
        for _ in 0..<min(max(failures, 0), 64) {
            delay = delay * 2
            if delay >= maximum { return maximum }
        }
        return min(delay, maximum)
    }

    /// The delay after `failures` consecutive failures, with `random` in `0 ..< 1` (the client
    /// passes a random number; tests pass fixed ones).
    public func delay(afterFailures failures: Int, random: Double) -> Duration {
        let base = baseDelay(afterFailures: failures)
        let factor = 1 - jitter * min(max(random, 0), 1)
        return max(floor, base * factor)
    }

    /// The delay of a prompt reconnect (after 1001 or 1012), with `random` in `0 ..< 1`.
    public func promptDelay(random: Double) -> Duration {
        let span = prompt.upperBound - prompt.lowerBound
        return max(floor, prompt.lowerBound + span * min(max(random, 0), 1))
    }
}
