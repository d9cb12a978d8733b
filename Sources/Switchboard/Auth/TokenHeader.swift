import Foundation

/// The parts of a compact JWS that ``TokenVerifier`` reads before choosing a key.
///
/// jwt-kit picks the key by `kid` only and never compares `alg` with the key's algorithm,
/// so the verifier reads `alg` itself.
struct TokenHeader {
    /// The `alg` header, e.g. "HS256".
    let algorithm: String
    /// The `kid` header, if any.
    let keyID: String?

    /// Parses the header of `token`, which must be three base64url segments whose first is a
    /// JSON object with a string `alg`, an optional string `kid`, and no `crit`.
    init(token: String) throws(TokenVerificationError) {
        let segments = token.split(separator: ".", omittingEmptySubsequences: false)
        guard segments.count == 3,
            !segments[0].isEmpty, !segments[1].isEmpty,
            let headerData = JWTBase64URL.decode(segments[0]),
            JWTBase64URL.decode(segments[1]) != nil,
            JWTBase64URL.decode(segments[2]) != nil,
            let fields = try? JSONDecoder().decode([String: JSONValue].self, from: headerData)
        else {
            throw .malformed
        }
        // RFC 7515 §4.1.11: extensions listed in `crit` must be understood; we understand none.
        guard fields["crit"] == nil else { throw .malformed }
        guard let algorithm = fields["alg"]?.stringValue else { throw .malformed }
        switch fields["kid"] {
        case nil, .null: keyID = nil
        case .string(let kid): keyID = kid
        default: throw .malformed
        }
        self.algorithm = algorithm
    }
}
