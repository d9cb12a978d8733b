/// How often the server's rate limits acted since it started (``SwitchboardServer/rateLimitCounters``).
public struct RateLimitCounters: Sendable, Equatable {
    /// Client events refused with `rate_limited`.
    public var eventsLimited: Int
    /// Connections closed with 1008 for sustained abuse of their limits.
    public var connectionsClosed: Int
    /// Handshakes (and handshake checks) refused with HTTP 429 `rate_limited`.
    public var handshakesLimited: Int

    public init(eventsLimited: Int = 0, connectionsClosed: Int = 0, handshakesLimited: Int = 0) {
        self.eventsLimited = eventsLimited
        self.connectionsClosed = connectionsClosed
        self.handshakesLimited = handshakesLimited
    }
}
