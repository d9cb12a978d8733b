import Foundation
import NIOHTTP1

/// Reads the token of a handshake and redacts it from URIs that are logged.
enum HandshakeCredentials {
    /// The token from `?token=` (browsers cannot set headers on a WebSocket) or `Authorization: Bearer`.
    static func token(uri: String, headers: HTTPHeaders) -> String? {
        if let query = URLComponents(string: uri)?.queryItems,
            let token = query.first(where: { $0.name == "token" })?.value, !token.isEmpty
        {
            return token
        }
        for value in headers["Authorization"] {
            let parts = value.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" {
                return String(parts[1]).trimmingCharacters(in: .whitespaces)
            }
        }
        return nil
    }

    /// `uri` with the value of every `token` (and `access_token`) query item replaced by
    /// `REDACTED`. Names are compared percent-decoded and in any case, as `token(uri:headers:)`
    /// reads them decoded: `?%74oken=…` authenticates, so it must not be logged either.
    static func redact(_ uri: String) -> String {
        guard let queryStart = uri.firstIndex(of: "?") else { return uri }
        let path = uri[..<queryStart]
        let items = uri[uri.index(after: queryStart)...].split(separator: "&", omittingEmptySubsequences: false).map { item -> String in
            let name = item.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
            let decoded = (name.removingPercentEncoding ?? name).lowercased()
            return decoded == "token" || decoded == "access_token" ? "\(name)=REDACTED" : String(item)
        }
        return path + "?" + items.joined(separator: "&")
    }
}
