/// Rate limits of client events (per connection) and of handshakes (per remote address). Every
/// value has a production default, generous for chat; `docs/protocol.md` describes what a client
/// that exceeds them gets.
public struct RateLimits: Sendable, Equatable {
    /// Limits of named events, per connection, each event with a bucket of its own. Default:
    /// `message.send` 20/s burst 40.
    public var events: [String: RateLimit]
    /// The limit of every other event a connection sends, all of them taking from one bucket (so
    /// that many event names do not multiply the budget), or `nil` for none. Default 100/s burst
    /// 200.
    public var otherEvents: RateLimit?
    /// Events never limited. Default: `presence.heartbeat`, so that a limited connection is never
    /// taken for a dead one.
    public var exemptEvents: Set<String>
    /// Sustained abuse: each limited event takes a token from this bucket, and the limited event
    /// that finds it empty closes the connection with 1008. Default 100 at once, refilled at 10/s
    /// (a client that keeps sending more than 10 events per second past its limit, or 100 in a
    /// burst, is closed); `nil` never closes.
    public var closeAfterLimited: RateLimit?
    /// Handshakes (and handshake checks, the plain `GET` of the WebSocket path) per remote
    /// address, checked before the token is verified: past it the client gets HTTP 429
    /// `rate_limited` with `Retry-After`. IPv6 addresses count per /64 prefix. Default 20/s burst
    /// 40; `nil` for none.
    public var handshakesPerAddress: RateLimit?
    /// Whether loopback addresses (127.0.0.0/8, ::1) are exempt from ``handshakesPerAddress``.
    /// Default `true`: a reverse proxy on the same host would otherwise put every client in one
    /// bucket (limit handshakes at the proxy then), and local load tests open thousands of
    /// connections from 127.0.0.1.
    public var exemptLoopback: Bool
    /// Most remote addresses whose handshake buckets are remembered; past it, addresses whose
    /// bucket has refilled are forgotten first, then arbitrary ones (which then start full
    /// again). Default 65536.
    public var maxTrackedAddresses: Int

    /// Creates limits; every parameter has the default documented on its property.
    public init(
        events: [String: RateLimit] = ["message.send": RateLimit(perSecond: 20, burst: 40)],
        otherEvents: RateLimit? = RateLimit(perSecond: 100, burst: 200),
        exemptEvents: Set<String> = ["presence.heartbeat"],
        closeAfterLimited: RateLimit? = RateLimit(perSecond: 10, burst: 100),
        handshakesPerAddress: RateLimit? = RateLimit(perSecond: 20, burst: 40),
        exemptLoopback: Bool = true,
        maxTrackedAddresses: Int = 65536
    ) {
        self.events = events
        self.otherEvents = otherEvents
        self.exemptEvents = exemptEvents
        self.closeAfterLimited = closeAfterLimited
        self.handshakesPerAddress = handshakesPerAddress
        self.exemptLoopback = exemptLoopback
        self.maxTrackedAddresses = maxTrackedAddresses
    }

    /// No limit at all: events and handshakes are never refused for their rate.
    public static let off = RateLimits(events: [:], otherEvents: nil, exemptEvents: [], closeAfterLimited: nil, handshakesPerAddress: nil)
}
