import Foundation

/// The claim checks ``TokenVerifier`` makes once a signature has matched.
struct ClaimValidator: Sendable {
    let options: TokenVerificationOptions

    /// Checks `exp`, `nbf`, `iss`, `aud` and `sub`, in that order, against `now`.
    func validate(_ claims: [String: JSONValue], now: Date) throws(TokenVerificationError) -> VerifiedToken {
        let now = now.timeIntervalSince1970
        let leeway = max(0, options.leeway.jwtSeconds)

        let expiration = try numericDate(claims["exp"])
        if let expiration {
            // RFC 7519 §4.1.4: the current time must be before `exp`.
            guard now < expiration + leeway else { throw .expired }
        } else if options.requireExpiration {
            throw .malformed
        }
        if let notBefore = try numericDate(claims["nbf"]) {
            guard now + leeway >= notBefore else { throw .notYetValid }
        }
        if let issuer = options.issuer {
            guard claims["iss"]?.stringValue == issuer else { throw .wrongIssuer }
        }
        if let audience = options.audience {
            switch claims["aud"] {
            case .string(let value) where value == audience: break
            case .array(let values) where values.contains(.string(audience)): break
            default: throw .wrongAudience
            }
        }
        guard let subject = claims["sub"]?.stringValue, !subject.isEmpty else { throw .missingSubject }

        return VerifiedToken(
            subject: subject,
            claims: claims,
            expiresAt: expiration.map { Date(timeIntervalSince1970: $0) }
        )
    }

    /// A NumericDate claim (seconds since 1970), `nil` when absent; any other type is malformed.
    private func numericDate(_ value: JSONValue?) throws(TokenVerificationError) -> Double? {
        switch value {
        case nil: return nil
        case .number(let seconds) where seconds.isFinite: return seconds
        default: throw .malformed
        }
    }
}
