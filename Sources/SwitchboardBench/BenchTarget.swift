import Foundation
import NIOCore

/// Where the bench connects: a loopback address, a port, and the request target of the upgrade.
///
/// Only `ws://` URLs whose host is `127.0.0.1`, `localhost` or `::1` are accepted: the bench is a
/// load generator and must never be pointed at someone else's machine. `localhost` is taken to
/// mean 127.0.0.1 (no resolver involved).
public struct BenchTarget: Sendable, Equatable {
    /// The address connected to.
    public let host: String
    /// The TCP port.
    public let port: Int
    /// Path and query of the upgrade request, without the token.
    public let pathAndQuery: String

    /// Parses `url`; throws ``BenchError/notLoopback(_:)`` for any other host and
    /// ``BenchError/invalidURL(_:)`` for anything that is not a `ws://` URL.
    public init(url: String) throws {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased() else {
            throw BenchError.invalidURL("\(url) is not a URL")
        }
        guard let rawHost = components.host, !rawHost.isEmpty else {
            throw BenchError.invalidURL("\(url) has no host")
        }
        var hostName = rawHost.lowercased()
        if hostName.hasPrefix("["), hostName.hasSuffix("]") {
            hostName = String(hostName.dropFirst().dropLast())
        }
        switch hostName {
        case "127.0.0.1", "localhost": host = "127.0.0.1"
        case "::1": host = "::1"
        default: throw BenchError.notLoopback(url)
        }
        switch scheme {
        case "ws", "http": break
        case "wss", "https": throw BenchError.invalidURL("\(url): TLS is not supported; use ws:// on loopback")
        default: throw BenchError.invalidURL("\(url): the scheme must be ws://")
        }
        let port = components.port ?? 80
        guard (1...65535).contains(port) else { throw BenchError.invalidURL("\(url): bad port") }
        self.port = port
        var path = components.percentEncodedPath
        if path.isEmpty { path = "/" }
        if let query = components.percentEncodedQuery, !query.isEmpty { path += "?" + query }
        pathAndQuery = path
    }

    /// The value of the `Host` header.
    var hostHeader: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// The upgrade request target carrying `token`.
    func requestTarget(token: String) -> String {
        let escaped = token.addingPercentEncoding(withAllowedCharacters: .urlQueryValueAllowed) ?? token
        return pathAndQuery + (pathAndQuery.contains("?") ? "&" : "?") + "token=" + escaped
    }

    func socketAddress() throws -> SocketAddress {
        try SocketAddress(ipAddress: host, port: port)
    }
}

extension CharacterSet {
    /// Unreserved characters (RFC 3986), safe inside a query value.
    fileprivate static let urlQueryValueAllowed = CharacterSet(
        charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
}
