import Foundation

/// A token whose signature and claims ``TokenVerifier`` has checked.
public struct VerifiedToken: Sendable {
    /// The `sub` claim: never empty.
    public let subject: String
    /// Every claim of the payload, registered ones (`sub`, `exp`, `iss`, ...) included.
    /// Numeric dates such as `exp` are `.number` seconds since 1970.
    public let claims: [String: JSONValue]
    /// The `exp` claim, or `nil` when the token has none.
    public let expiresAt: Date?

    /// Creates a verified token as is, checking nothing. ``TokenVerifier`` makes these after its checks;
    /// other code should only do so for identities it has established itself (e.g. in tests).
    public init(subject: String, claims: [String: JSONValue], expiresAt: Date?) {
        self.subject = subject
        self.claims = claims
        self.expiresAt = expiresAt
    }
}
