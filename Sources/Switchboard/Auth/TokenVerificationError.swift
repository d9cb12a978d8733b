/// Why ``TokenVerifier/verify(_:)`` refused a token.
///
/// ``reason`` and ``code`` are stable and reveal nothing secret, so they may be sent to the client.
public enum TokenVerificationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No token was presented. `verify(_:)` itself never throws this (an empty string is
    /// ``malformed``); it is for transports that found no token to verify at all.
    case missing
    /// Not a compact JWS with a JSON header and a JSON object payload, a claim has the wrong type,
    /// the header carries `crit`, or `exp` is absent while ``TokenVerificationOptions/requireExpiration`` is set.
    case malformed
    /// No configured key produced this signature.
    case badSignature
    /// `exp` is in the past, by more than the leeway.
    case expired
    /// `nbf` is in the future, by more than the leeway.
    case notYetValid
    /// `iss` is not the configured issuer.
    case wrongIssuer
    /// `aud` does not name the configured audience.
    case wrongAudience
    /// `sub` is absent, not a string, or empty.
    case missingSubject
    /// The `alg` header is `none` or an algorithm no configured key verifies.
    case unsupportedAlgorithm

    /// A short human-readable reason, e.g. "token expired".
    public var reason: String {
        switch self {
        case .missing: "token missing"
        case .malformed: "malformed token"
        case .badSignature: "invalid token signature"
        case .expired: "token expired"
        case .notYetValid: "token not yet valid"
        case .wrongIssuer: "wrong token issuer"
        case .wrongAudience: "wrong token audience"
        case .missingSubject: "token has no subject"
        case .unsupportedAlgorithm: "unsupported token algorithm"
        }
    }

    /// A stable snake_case code for programs, e.g. "token_expired".
    public var code: String {
        switch self {
        case .missing: "token_missing"
        case .malformed: "invalid_token"
        case .badSignature: "invalid_signature"
        case .expired: "token_expired"
        case .notYetValid: "token_not_yet_valid"
        case .wrongIssuer: "wrong_issuer"
        case .wrongAudience: "wrong_audience"
        case .missingSubject: "missing_subject"
        case .unsupportedAlgorithm: "unsupported_algorithm"
        }
    }

    /// The same as ``reason``.
    public var description: String { reason }
}
