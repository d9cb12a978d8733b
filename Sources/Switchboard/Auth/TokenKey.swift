/// A key that ``TokenVerifier`` accepts token signatures from.
///
/// Each key fixes the algorithm it verifies; the token's `alg` header must name that
/// algorithm, so a token can never choose how it is checked.
public enum TokenKey: Sendable {
    /// A shared HS256 secret, used as its UTF-8 bytes.
    ///
    /// It must be at least 32 bytes long (RFC 7518 §3.2); shorter secrets are refused
    /// with ``TokenKeyError/secretTooShort(minimumBytes:)``.
    case hmacSecret(String)

    /// A PEM public key (`-----BEGIN PUBLIC KEY-----`).
    ///
    /// RSA (2048 bits or more) verifies RS256, EC P-256 verifies ES256 and Ed25519 verifies EdDSA.
    /// Anything else is refused with ``TokenKeyError/unrecognizedPublicKey``.
    case publicKeyPEM(String)

    /// A JSON Web Key Set (`{"keys": [...]}`), as published by an identity provider.
    ///
    /// Every key needs a `kid`. A key with an `alg` verifies that algorithm only; a key without one
    /// verifies its type's usual algorithm: RS256 for RSA, ES256/ES384/ES512 for P-256/P-384/P-521,
    /// EdDSA for Ed25519. Keys for other uses (such as `RSA-OAEP`) are skipped; a set with no
    /// usable key is refused with ``TokenKeyError/invalidJWKS(reason:)``.
    case jwksJSON(String)
}
