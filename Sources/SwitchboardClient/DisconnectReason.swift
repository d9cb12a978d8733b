/// Why a connection ended or could not be made.
public enum DisconnectReason: Sendable, Hashable, CustomStringConvertible {
    /// The server closed with this WebSocket close code (protocol section 4) and reason.
    case closed(code: UInt16, reason: String?)
    /// The TCP connection ended without a Close frame (1006), or could not be opened.
    case connectionLost(String)
    /// The server refused the handshake with this HTTP status and the body's `code` and `message`
    /// (protocol 1.2), e.g. 401 `token_expired`.
    case refused(status: Int, code: String, message: String)
    /// Nothing arrived from the server for the heartbeat timeout: the connection was given up.
    case heartbeatTimeout
    /// The token provider threw.
    case tokenUnavailable(String)
    /// ``SwitchboardClient/close()`` was called.
    case closedByClient

    /// The close code, where there is one (1006 for a connection that ended without a Close).
    public var closeCode: UInt16? {
        switch self {
        case .closed(let code, _): return code
        case .connectionLost, .heartbeatTimeout: return 1006
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .closed(let code, let reason): return "closed \(code)" + (reason.map { $0.isEmpty ? "" : " (\($0))" } ?? "")
        case .connectionLost(let detail): return "connection lost (\(detail))"
        case .refused(let status, let code, let message): return "refused \(status) \(code): \(message)"
        case .heartbeatTimeout: return "heartbeat timeout"
        case .tokenUnavailable(let detail): return "token unavailable: \(detail)"
        case .closedByClient: return "closed by the client"
        }
    }
}
