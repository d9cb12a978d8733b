import Foundation

/// The user a connection was authenticated as at the handshake.
public final class AuthenticatedUser: Sendable {
    /// The user id: the token's `sub`.
    public let id: String
    /// Every claim of the verified token, custom ones included.
    public let claims: [String: JSONValue]
    /// When the token expires; the connection is closed with ``CloseCode/tokenExpired`` then.
    public let expiresAt: Date?

    public init(id: String, claims: [String: JSONValue] = [:], expiresAt: Date? = nil) {
        self.id = id
        self.claims = claims
        self.expiresAt = expiresAt
    }

    /// The user of connections on a server without authentication (echo mode).
    public static let anonymous = AuthenticatedUser(id: "anonymous")
}
