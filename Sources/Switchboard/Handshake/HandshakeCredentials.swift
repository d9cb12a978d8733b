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
    ///
    /// The query is split on its bytes, as the URL parser splits it, not on Swift characters: a
    /// combining mark after `=` or `?` makes one character of the two, and `?token=\u{0747}…`
    /// (which still authenticates with what follows the `=`) was logged whole (a fuzz finding).
    static func redact(_ uri: String) -> String {
        let bytes = Array(uri.utf8)
        guard let queryStart = bytes.firstIndex(of: UInt8(ascii: "?")) else { return uri }
        var redacted = Array(bytes[...queryStart])
        let items = bytes[(queryStart + 1)...].split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: false)
        for (index, item) in items.enumerated() {
            if index > 0 { redacted.append(UInt8(ascii: "&")) }
            let nameBytes = item.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false).first ?? item
            let name = String(decoding: nameBytes, as: UTF8.self)
            let decoded = (name.removingPercentEncoding ?? name).lowercased()
            if decoded == "token" || decoded == "access_token" {
                redacted += nameBytes
                redacted += Array("=REDACTED".utf8)
            } else {
                redacted += item
            }
        }
        return String(decoding: redacted, as: UTF8.self)
    }
}
