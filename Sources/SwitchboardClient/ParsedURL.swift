import Foundation

/// The parts of a `ws://` or `wss://` URL the client needs.
struct ParsedURL: Sendable, Equatable {
    let text: String
    let secure: Bool
    let host: String
    let port: Int
    let pathAndQuery: String

    /// `Host` header value.
    var hostHeader: String { "\(host):\(port)" }

    /// `nil` unless the scheme is ws, wss, http or https and there is a host.
    init?(_ text: String) {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            let host = components.host, !host.isEmpty
        else { return nil }
        switch scheme {
        case "ws", "http": secure = false
        case "wss", "https": secure = true
        default: return nil
        }
        self.text = text
        self.host = host
        self.port = components.port ?? (secure ? 443 : 80)
        let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        self.pathAndQuery = path + (components.percentEncodedQuery.map { "?\($0)" } ?? "")
    }
}
