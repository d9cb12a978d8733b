/// The client's connection state, as ``ClientEvent/state(_:)`` reports each change.
public enum ConnectionState: Sendable, Hashable, CustomStringConvertible {
    /// The first connection attempt is under way.
    case connecting
    /// Connected and `session.hello` acknowledged: rooms resumed, queued requests being sent.
    case open
    /// The connection ended (`reason`); the next attempt starts after `delay`. `attempt` counts
    /// the consecutive failures so far (1 after the first).
    case reconnecting(attempt: Int, delay: Duration, reason: DisconnectReason)
    /// The client has stopped and will not reconnect: closed by the app, or a close that
    /// reconnecting cannot help (1002, 1007, 1008, 1009, a refused token, a failing token provider).
    case closed(DisconnectReason)

    public var description: String {
        switch self {
        case .connecting: return "connecting"
        case .open: return "open"
        case .reconnecting(let attempt, let delay, let reason): return "reconnecting (attempt \(attempt) in \(delay), \(reason))"
        case .closed(let reason): return "closed (\(reason))"
        }
    }
}
