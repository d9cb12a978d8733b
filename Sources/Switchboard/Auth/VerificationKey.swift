import Foundation
import JWTKit

/// One configured key, in a jwt-kit collection of its own, with the one algorithm it verifies.
///
/// Each key gets its own `JWTKeyCollection` because a collection keeps a single key without a `kid`
/// (a second one replaces the first) and falls back to its default key for an unknown `kid`;
/// one key per collection lets ``TokenVerifier`` decide which keys to try.
struct VerificationKey: Sendable {
    let collection: JWTKeyCollection
    /// The JWS `alg` this key verifies, as jwt-kit names it: "HS256", "RS256", "ES256", "EdDSA", ...
    let algorithm: String
    /// The JWKS `kid`, or `nil` for keys configured directly.
    let keyID: String?

    /// The keys that `key` describes: one, or one per usable key of a JWKS.
    static func make(from key: TokenKey) async throws(TokenKeyError) -> [VerificationKey] {
        switch key {
        case .hmacSecret(let secret):
            return [try await hmac(secret: secret)]
        case .publicKeyPEM(let pem):
            return [try await publicKey(pem: pem)]
        case .jwksJSON(let json):
            return try await jwks(json: json)
        }
    }

    private static func hmac(secret: String) async throws(TokenKeyError) -> VerificationKey {
        // jwt-kit only `assert`s the length (a crash in debug builds), so check it here first.
        guard secret.utf8.count >= TokenKeyError.minimumSecretBytes else {
            throw .secretTooShort(minimumBytes: TokenKeyError.minimumSecretBytes)
        }
        let collection = JWTKeyCollection()
        await collection.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        return VerificationKey(collection: collection, algorithm: "HS256", keyID: nil)
    }

    private static func publicKey(pem: String) async throws(TokenKeyError) -> VerificationKey {
        let collection = JWTKeyCollection()
        if let key = try? Insecure.RSA.PublicKey(pem: pem) {
            await collection.add(rsa: key, digestAlgorithm: .sha256)
            return VerificationKey(collection: collection, algorithm: "RS256", keyID: nil)
        }
        if let key = try? ES256PublicKey(pem: pem) {
            await collection.add(ecdsa: key)
            return VerificationKey(collection: collection, algorithm: "ES256", keyID: nil)
        }
        if let key = try? EdDSA.PublicKey(pem: pem) {
            await collection.add(eddsa: key)
            return VerificationKey(collection: collection, algorithm: "EdDSA", keyID: nil)
        }
        throw .unrecognizedPublicKey
    }

    private static func jwks(json: String) async throws(TokenKeyError) -> [VerificationKey] {
        let set: JWKS
        do {
            set = try JSONDecoder().decode(JWKS.self, from: Data(json.utf8))
        } catch {
            throw .invalidJWKS(reason: "not a JSON Web Key Set")
        }
        var keys: [VerificationKey] = []
        for jwk in set.keys {
            guard let kid = jwk.keyIdentifier?.string else {
                throw .invalidJWKS(reason: "a key has no kid")
            }
            guard let algorithm = signingAlgorithm(of: jwk) else { continue }
            let collection = JWTKeyCollection()
            let name: String
            do {
                try await collection.add(jwk: jwk)
                // Builds (and caches) the signer for `algorithm`, so a bad key fails here, not per token.
                name = try await collection.getKey(alg: algorithm.rawValue).name
            } catch {
                throw .invalidJWKS(reason: "key \"\(kid)\" cannot verify \(algorithm.rawValue)")
            }
            keys.append(VerificationKey(collection: collection, algorithm: name, keyID: kid))
        }
        guard !keys.isEmpty else { throw .invalidJWKS(reason: "no signing keys") }
        return keys
    }

    /// The JWS algorithm a JWK verifies: its own `alg` when that is a signing algorithm,
    /// else its key type's usual one; `nil` for keys that cannot sign (e.g. `alg: RSA-OAEP`).
    private static func signingAlgorithm(of jwk: JWK) -> JWK.Algorithm? {
        if let algorithm = jwk.algorithm {
            let signing: [JWK.Algorithm] = [.rs256, .rs384, .rs512, .ps256, .ps384, .ps512, .es256, .es384, .es512, .eddsa]
            return signing.contains(algorithm) ? algorithm : nil
        }
        switch jwk.keyType {
        case .rsa: return .rs256
        case .octetKeyPair: return .eddsa
        case .ecdsa:
            switch jwk.curve?.rawValue {
            case "P-256": return .es256
            case "P-384": return .es384
            case "P-521": return .es512
            default: return nil
            }
        default: return nil
        }
    }
}
