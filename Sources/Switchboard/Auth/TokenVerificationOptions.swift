/// What ``TokenVerifier`` checks beyond the signature.
public struct TokenVerificationOptions: Sendable {
    /// The required `iss` claim, compared exactly. `nil` (the default) accepts any issuer, or none.
    public var issuer: String?

    /// The required audience: the token's `aud` must equal it or, when `aud` is an array, contain it.
    /// `nil` (the default) accepts any audience, or none.
    public var audience: String?

    /// Clock skew allowed when checking `exp` and `nbf`. Defaults to 5 seconds.
    public var leeway: Duration

    /// Whether a token without an `exp` claim is refused (as ``TokenVerificationError/malformed``).
    /// Defaults to `false`: tokens without `exp` never expire.
    public var requireExpiration: Bool

    /// Creates options; every argument has the default documented on its property.
    public init(
        issuer: String? = nil,
        audience: String? = nil,
        leeway: Duration = .seconds(5),
        requireExpiration: Bool = false
    ) {
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.requireExpiration = requireExpiration
    }
}
