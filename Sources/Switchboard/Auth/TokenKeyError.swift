/// Why ``TokenVerifier/init(keys:options:)`` or ``TokenMinter/mint(subject:ttl:claims:notBefore:issuer:audience:)``
/// refused a key. These are configuration errors, meant for the operator, not for clients.
public enum TokenKeyError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No keys were given, so no token could ever verify.
    case noKeys
    /// An HMAC secret is shorter than the SHA-256 output (RFC 7518 §3.2).
    case secretTooShort(minimumBytes: Int)
    /// A PEM is not an RSA (2048 bits or more), EC P-256 or Ed25519 public key.
    case unrecognizedPublicKey
    /// A JWKS could not be read or holds no usable signing key.
    case invalidJWKS(reason: String)

    /// The minimum HMAC secret length, in bytes, for HS256.
    static let minimumSecretBytes = 32

    /// A message for logs or a startup failure, naming what is wrong with the key.
    public var description: String {
        switch self {
        case .noKeys:
            "no token keys configured"
        case .secretTooShort(let minimumBytes):
            "HS256 secret too short: it must be at least \(minimumBytes) bytes"
        case .unrecognizedPublicKey:
            "public key PEM is not an RSA (2048 bits or more), EC P-256 or Ed25519 public key"
        case .invalidJWKS(let reason):
            "invalid JWKS: \(reason)"
        }
    }
}
