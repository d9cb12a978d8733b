import Foundation

/// Why a bench run could not start or finish. The descriptions are meant for the terminal.
public enum BenchError: Error, CustomStringConvertible, Equatable {
    /// The URL is not a `ws://` URL on 127.0.0.1, localhost or ::1.
    case notLoopback(String)
    /// The URL could not be parsed, or uses an unsupported scheme.
    case invalidURL(String)
    /// An option is out of range.
    case invalidOption(String)
    /// A bounded wait expired.
    case timeout(String)
    /// The server refused the WebSocket upgrade with this HTTP status (and error code, when the body had one).
    case handshakeRejected(status: Int, code: String?)
    /// The server's reply to the upgrade request was not HTTP.
    case badHandshakeResponse(String)
    /// The connection closed while something was awaited.
    case connectionClosed(String)
    /// The server answered a request with an `error` envelope.
    case errorReply(String)
    /// Too few connections could be set up to run the scenario.
    case setupFailed(String)
    /// Reading /proc failed.
    case procUnavailable(String)

    public var description: String {
        switch self {
        case .notLoopback(let url):
            return "refusing \(url): the bench only connects to loopback (ws://127.0.0.1, ws://localhost or ws://[::1])"
        case .invalidURL(let message): return "invalid --url: \(message)"
        case .invalidOption(let message): return message
        case .timeout(let message): return "timeout: \(message)"
        case .handshakeRejected(let status, let code):
            return "handshake rejected with HTTP \(status)" + (code.map { " (\($0))" } ?? "")
        case .badHandshakeResponse(let message): return "bad handshake response: \(message)"
        case .connectionClosed(let message): return "connection closed: \(message)"
        case .errorReply(let message): return "error reply: \(message)"
        case .setupFailed(let message): return message
        case .procUnavailable(let message): return message
        }
    }
}
