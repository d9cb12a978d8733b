import JWTKit

/// Every claim of a JWT payload, for signing with and verifying through jwt-kit.
///
/// It encodes and decodes as the bare JSON object, so custom claims survive as they are.
struct ClaimsPayload: JWTPayload {
    var claims: [String: JSONValue]

    init(claims: [String: JSONValue]) {
        self.claims = claims
    }

    init(from decoder: any Decoder) throws {
        claims = try decoder.singleValueContainer().decode([String: JSONValue].self)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(claims)
    }

    /// Checks nothing: jwt-kit calls this after the signature matched, but the claim checks need
    /// ``TokenVerificationOptions`` and precise errors, so ``ClaimValidator`` does them afterwards.
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
