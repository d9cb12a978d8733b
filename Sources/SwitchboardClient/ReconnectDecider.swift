/// Decides, after each connection attempt, whether to reconnect and after how long (protocol
/// section 4's advice): a value type with no clock, so that the schedule is unit-tested.
struct ReconnectDecider: Sendable {
    enum Step: Equatable {
        case retry(after: Duration)
        case stop
    }

    let backoff: BackoffPolicy
    let canRefreshToken: Bool
    /// Consecutive attempts that did not end in a connection open for `backoff.resetAfter`.
    private(set) var failures = 0
    /// Whether the last attempt was refused with 401/403 already once since the last session.
    private var refusedOnce = false

    init(backoff: BackoffPolicy, canRefreshToken: Bool) {
        self.backoff = backoff
        self.canRefreshToken = canRefreshToken
    }

    /// Close codes after which reconnecting will not help: fix the client.
    static let finalCloseCodes: Set<UInt16> = [1002, 1007, 1008, 1009]

    mutating func next(after reason: DisconnectReason, wasOpen: Bool, openFor: Duration, random: Double) -> Step {
        if wasOpen { refusedOnce = false }
        if wasOpen, openFor >= backoff.resetAfter { failures = 0 }
        let first = failures == 0
        defer { failures += 1 }
        switch reason {
        case .closedByClient, .tokenUnavailable:
            return .stop
        case .closed(let code, _) where Self.finalCloseCodes.contains(code):
            return .stop
        case .refused(let status, _, _) where status == 401 || status == 403:
            // One new token, at once; refused again (or no way to get another) is final.
            guard canRefreshToken, !refusedOnce else { return .stop }
            refusedOnce = true
            return .retry(after: backoff.floor)
        case .closed(4001, _) where first:
            // The token expired: a new one at once (the provider is called before every attempt).
            return .retry(after: backoff.floor)
        case .closed(let code, _) where first && (code == 1001 || code == 1012):
            // The server restarts or drains: come back soon, but not all at the same moment.
            return .retry(after: backoff.promptDelay(random: random))
        default:
            return .retry(after: backoff.delay(afterFailures: failures, random: random))
        }
    }
}
