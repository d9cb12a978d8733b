import Foundation
import JWTKit

/// Mints HS256 tokens, for development, tests and load generation.
///
/// Each token carries `sub`, `iat` and `exp` (whole seconds, `exp` rounded up), plus the
/// optional claims. Minting shares no state, so concurrent calls run in parallel.
public struct TokenMinter: Sendable {
    /// The secret the CLI uses when none is configured. Public knowledge: never use it in production.
    ///
    /// It is 32 bytes or longer, as HS256 requires (RFC 7518 §3.2).
    public static let developmentSecret = "switchboard-dev-secret-not-for-production"

    private let key: HMACKey
    private let secretByteCount: Int

    /// Creates a minter for `hs256Secret`, used as its UTF-8 bytes.
    /// A secret shorter than 32 bytes makes ``mint(subject:ttl:claims:notBefore:issuer:audience:)`` throw.
    public init(hs256Secret: String) {
        self.key = HMACKey(from: hs256Secret)
        self.secretByteCount = hs256Secret.utf8.count
    }

    /// Returns a signed compact JWT.
    ///
    /// - Parameters:
    ///   - subject: The `sub` claim. ``TokenVerifier`` refuses an empty one.
    ///   - ttl: Lifetime from now; `exp` is now + `ttl`, rounded up to a whole second. May be negative (for tests).
    ///   - claims: Extra claims, e.g. `["rooms": .array([.string("lobby")])]`. The other arguments
    ///     override `sub`, `iat`, `exp`, `nbf`, `iss` and `aud` in it.
    ///   - notBefore: The `nbf` claim (rounded down to a whole second), if any.
    ///   - issuer: The `iss` claim, if any.
    ///   - audience: The `aud` claim (a single string), if any.
    /// - Throws: ``TokenKeyError/secretTooShort(minimumBytes:)`` for a secret under 32 bytes.
    public func mint(
        subject: String,
        ttl: Duration = .seconds(3600),
        claims: [String: JSONValue] = [:],
        notBefore: Date? = nil,
        issuer: String? = nil,
        audience: String? = nil
    ) async throws -> String {
        // jwt-kit only `assert`s the length (a crash in debug builds), so check it here first.
        guard secretByteCount >= TokenKeyError.minimumSecretBytes else {
            throw TokenKeyError.secretTooShort(minimumBytes: TokenKeyError.minimumSecretBytes)
        }
        let now = Date().timeIntervalSince1970
        var payload = claims
        payload["sub"] = .string(subject)
        payload["iat"] = .number(now.rounded(.down))
        payload["exp"] = .number((now + ttl.jwtSeconds).rounded(.up))
        if let notBefore { payload["nbf"] = .number(notBefore.timeIntervalSince1970.rounded(.down)) }
        if let issuer { payload["iss"] = .string(issuer) }
        if let audience { payload["aud"] = .string(audience) }

        let keys = JWTKeyCollection()
        await keys.add(hmac: key, digestAlgorithm: .sha256)
        return try await keys.sign(ClaimsPayload(claims: payload))
    }
}
