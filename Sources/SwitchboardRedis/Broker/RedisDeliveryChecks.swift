/// How often a ``RedisBroker`` checks that pub/sub still delivers. Redis pub/sub is at most once:
/// a subscription can stop delivering while its connection stays open and publishes keep
/// succeeding (e.g. after a failover), and a single message can be lost with no later one to
/// reveal the gap. Every field has a documented default.
public struct RedisDeliveryChecks: Sendable, Hashable {
    /// When the pub/sub connection has received nothing for this long, the node publishes a probe
    /// to a channel of its own (`<prefix>node:<node id>`) and expects it back on that connection.
    /// Default 5 s.
    public var probeInterval: Duration
    /// How long a probe may take to come back. A probe that does not come back in time means the
    /// subscription is wedged: the broker drops the pub/sub connection and opens a new one (which
    /// re-subscribes every channel and catches every room up from history), and it is not ready
    /// (``RedisBroker/notReadyReason``) until a probe comes back again. Default 5 s.
    public var probeTimeout: Duration
    /// How often the node compares each subscribed room's last delivered position with the
    /// room's position in Redis, to find an event lost with no later event to reveal it.
    /// Default 30 s.
    public var auditInterval: Duration
    /// How long a room's catch-up from history keeps trying when Redis does not answer it, e.g.
    /// because the command pool is still reconnecting when the pub/sub connection is back (after
    /// Redis restarted, each reconnects on its own backoff). Live events wait meanwhile; only
    /// past this are the room's local members closed with 1013 to resume on their own. Real
    /// time, not the broker's clock: it waits for connections. Default 10 s (more than the
    /// pool's longest reconnect backoff, 5 s).
    public var catchUpPatience: Duration

    public init(
        probeInterval: Duration = .seconds(5), probeTimeout: Duration = .seconds(5), auditInterval: Duration = .seconds(30),
        catchUpPatience: Duration = .seconds(10)
    ) {
        self.probeInterval = probeInterval
        self.probeTimeout = probeTimeout
        self.auditInterval = auditInterval
        self.catchUpPatience = catchUpPatience
    }

    /// Throws `RedisError.invalidConfiguration` when an interval or the timeout is not positive
    /// (or the catch-up patience is negative).
    func validate() throws {
        guard probeInterval > .zero, probeTimeout > .zero, auditInterval > .zero else {
            throw RedisError.invalidConfiguration("delivery checks: intervals and the probe timeout must be positive")
        }
        guard catchUpPatience >= .zero else {
            throw RedisError.invalidConfiguration("delivery checks: the catch-up patience must not be negative")
        }
    }
}
