import Atomics
import Logging
import NIOCore

/// A server's rate limits at work: the compiled limits, the time they run on, their counters and
/// their throttled warnings. Counters and logs are touched only when a limit refuses something.
final class RateLimiting: Sendable {
    let events: EventRateLimiter
    let handshakes: HandshakeRateLimiter?
    /// Nanoseconds since the server started, on the server's clock (a test's clock in tests).
    let now: @Sendable () -> Int64
    private let eventsLimited = ManagedAtomic<Int>(0)
    private let connectionsClosed = ManagedAtomic<Int>(0)
    private let handshakesLimited = ManagedAtomic<Int>(0)
    private let eventLog: LogThrottle
    private let closeLog: LogThrottle
    private let handshakeLog: LogThrottle

    /// One warning per kind per `logInterval`, with the number held back since the last one.
    init(_ limits: RateLimits, now: @escaping @Sendable () -> Int64, logInterval: Duration = .seconds(10)) {
        self.events = EventRateLimiter(limits)
        self.handshakes = HandshakeRateLimiter(limits)
        self.now = now
        self.eventLog = LogThrottle(interval: logInterval)
        self.closeLog = LogThrottle(interval: logInterval)
        self.handshakeLog = LogThrottle(interval: logInterval)
    }

    /// `now` of `clock`, in nanoseconds since this call.
    static func uptime<C: Clock & Sendable>(of clock: C) -> @Sendable () -> Int64 where C.Duration == Duration {
        let origin = clock.now
        return { TokenSchedule.nanoseconds(origin.duration(to: clock.now)) }
    }

    var counters: RateLimitCounters {
        RateLimitCounters(
            eventsLimited: eventsLimited.load(ordering: .relaxed),
            connectionsClosed: connectionsClosed.load(ordering: .relaxed),
            handshakesLimited: handshakesLimited.load(ordering: .relaxed)
        )
    }

    /// The rejection of a handshake from `address` past its limit, or `nil`.
    func checkHandshake(from address: SocketAddress?, logger: Logger) -> HandshakeRejection? {
        guard let handshakes else { return nil }
        let time = now()
        guard let retryAfter = handshakes.admit(address, now: time) else { return nil }
        handshakesLimited.wrappingIncrement(ordering: .relaxed)
        let seconds = TokenSchedule.seconds(retryAfter)
        if let heldBack = handshakeLog.admit(now: time) {
            logger.warning(
                "handshakes rate-limited",
                metadata: ["remote": "\(address.map { "\($0)" } ?? "-")", "retry_after_s": "\(seconds)", "not_logged": "\(heldBack)"]
            )
        }
        return .rateLimited(retryAfterSeconds: seconds)
    }

    /// Records an event refused with `rate_limited`.
    func limited(_ event: String, socket: Socket, retryAfterMilliseconds: Int64, logger: Logger) {
        eventsLimited.wrappingIncrement(ordering: .relaxed)
        logger.debug("event rate-limited", metadata: ["socket": "\(socket.id)", "event": "\(event)", "retry_after_ms": "\(retryAfterMilliseconds)"])
        if let heldBack = eventLog.admit(now: now()) {
            logger.warning(
                "events rate-limited",
                metadata: ["socket": "\(socket.id)", "user": "\(socket.user.id)", "event": "\(event)", "not_logged": "\(heldBack)"]
            )
        }
    }

    /// Records a connection closed for sustained abuse.
    func closed(_ socket: Socket, event: String, logger: Logger) {
        connectionsClosed.wrappingIncrement(ordering: .relaxed)
        if let heldBack = closeLog.admit(now: now()) {
            logger.warning(
                "connection closed for exceeding its rate limits",
                metadata: ["socket": "\(socket.id)", "user": "\(socket.user.id)", "event": "\(event)", "not_logged": "\(heldBack)"]
            )
        }
    }
}
