import Foundation
import JWTKit

/// Verifies JWTs (compact JWS) against a fixed set of keys, using jwt-kit for the signatures.
///
/// A token is accepted only if all of these hold:
/// - its `alg` header names the algorithm of a configured key (so `none` and algorithm
///   confusion, such as an HS256 token keyed with an RSA public key's PEM, are refused);
/// - that key's signature check passes (with a `kid` that names a JWKS key, only that key is tried);
/// - `exp` and `nbf`, when present, hold within the leeway, and `iss`/`aud` match when configured;
/// - `sub` is a non-empty string.
///
/// Keys are fixed at creation; to rotate them, create a new verifier. Verification is safe to call
/// concurrently from any task.
public final class TokenVerifier: Sendable {
    private let keys: [VerificationKey]
    private let validator: ClaimValidator

    /// Creates a verifier for `keys`.
    ///
    /// - Throws: ``TokenKeyError`` if `keys` is empty or any key cannot be used
    ///   (short secret, unrecognized PEM, unreadable JWKS).
    public init(keys: [TokenKey], options: TokenVerificationOptions = .init()) async throws {
        guard !keys.isEmpty else { throw TokenKeyError.noKeys }
        var verificationKeys: [VerificationKey] = []
        for key in keys {
            verificationKeys += try await VerificationKey.make(from: key)
        }
        self.keys = verificationKeys
        self.validator = ClaimValidator(options: options)
    }

    /// Verifies `token` (without any `Bearer ` prefix) and returns its claims.
    ///
    /// - Throws: ``TokenVerificationError``, whose ``TokenVerificationError/reason`` and
    ///   ``TokenVerificationError/code`` may be sent to the client.
    public func verify(_ token: String) async throws(TokenVerificationError) -> VerifiedToken {
        let header = try TokenHeader(token: token)
        // jwt-kit verifies with whatever key it picks by `kid`, whatever `alg` says; match `alg` here.
        let candidates = keys.filter { $0.algorithm == header.algorithm }
        guard !candidates.isEmpty else { throw .unsupportedAlgorithm }

        for key in Self.keysToTry(candidates, keyID: header.keyID) {
            let payload: ClaimsPayload
            do {
                payload = try await key.collection.verify(token, as: ClaimsPayload.self)
            } catch let error as JWTError where error.errorType == .malformedToken {
                // The signature matched, but the payload is not a JSON object.
                throw .malformed
            } catch {
                continue
            }
            return try validator.validate(payload.claims, now: Date())
        }
        throw .badSignature
    }

    /// The keys named by `keyID` if a JWKS key has it, else the keys configured without one.
    /// Without a `kid`, every candidate is tried.
    private static func keysToTry(_ candidates: [VerificationKey], keyID: String?) -> [VerificationKey] {
        guard let keyID else { return candidates }
        let named = candidates.filter { $0.keyID == keyID }
        return named.isEmpty ? candidates.filter { $0.keyID == nil } : named
    }
}
