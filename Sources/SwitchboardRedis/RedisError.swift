/// Why a Redis command, connection or subscription failed.
///
/// Every failure of this module is one of these; a caller never waits without bound, it gets one
/// of them instead.
public enum RedisError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The connection closed (by the server, the network, `close()`, or because another command on
    /// it timed out) before the reply arrived. The command may or may not have run.
    case connectionClosed
    /// No reply within the command timeout. The connection was closed (later replies would
    /// misalign), so every other command pending on it failed with `connectionClosed`.
    /// The command may or may not have run.
    case timeout
    /// The server sent bytes that are not valid RESP, a reply that breaks a decoder limit, or a
    /// reply that does not fit the command; the connection was closed.
    case protocolError(String)
    /// The server answered with an error reply (`-ERR …`, `-NOSCRIPT …`, `-WRONGPASS …`): the whole
    /// message, error code first. The connection stays usable.
    case server(String)
    /// No connection to use: not connected yet, reconnecting, or shut down. Nothing was sent.
    case unavailable
    /// A `RedisConfiguration` or URL that cannot be used (the message says why).
    case invalidConfiguration(String)
    /// Opening the TCP connection failed (refused, unreachable, connect timeout).
    case connectFailed(String)

    /// The error code of a `server` error (`ERR`, `NOSCRIPT`, `WRONGPASS`…), `nil` otherwise.
    public var serverErrorCode: Substring? {
        guard case .server(let message) = self else { return nil }
        return message.split(separator: " ", maxSplits: 1).first
    }

    public var description: String {
        switch self {
        case .connectionClosed: return "Redis connection closed before the reply arrived"
        case .timeout: return "Redis command timed out (the connection was closed)"
        case .protocolError(let message): return "Redis protocol error: \(message)"
        case .server(let message): return "Redis error reply: \(message)"
        case .unavailable: return "Redis unavailable: no connection (connecting, reconnecting or shut down)"
        case .invalidConfiguration(let message): return "invalid Redis configuration: \(message)"
        case .connectFailed(let message): return "could not connect to Redis: \(message)"
        }
    }
}
