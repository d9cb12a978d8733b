import Foundation
import JWTKit
import Switchboard
import Testing

// MARK: - Fixtures

/// A 2048-bit RSA key pair used only by these tests (`openssl genrsa 2048`, `openssl rsa -pubout`).
private let rsaPrivateKeyPEM = """
    -----BEGIN PRIVATE KEY-----
    MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDNzdl+U3pGFzCI
    AUUYl+fStviCcE1e/KFu92ekqb3WGLGBwnIg6nZSuVUOc59dNRxsigMHh08/MNp2
    ePQrnIa3OX5tyd+2KoOApMiFodnI/9nNLeKr+ynr2WARFPs9xyNLGDn8jwvJgDRJ
    Itu/mWzbC9TnacAKDxbMdo6n5+7HSDbg/m1iGztWFsFqr4he+4Yv2U/lsOL1LOwb
    S57TjPexwG3WZJM22Rnyr+7MfCcms4oEeez9Gc23hOqJvoAlj+KfyIrVcFdCbBLE
    JbvkGQgEHirRml8HnwTaT6lGHJ1UThfNrZK1Sk1U20qzSmdrMR/OYSJFfycBwyY4
    Ux4qhWsHAgMBAAECggEACFToPwN9JJTwFjQgSnsX26wkSmTmf6JwR1BFG2GdzwA9
    QMNmSxaC3MgmUolJby9lFlsjUpeJP0XTNPmiP5kSIR0hlQCXtHBrK3brAUdIoakD
    SxmrnrUdK4Wngc7czvxJXaho7I8T9eqL81axw8N1KIxa6FVxJ1cYtVqqss8ibQyD
    mAS8un1QxVGDRczfTeCkXDc6JfQCguiOyYeFfBwYTOuxYgdd6LBJgIrbgsoAfhup
    i+OMVCPZonbSGwX9DW8fAvEJtVkxZY+MwnIZfyXs4tNYrRPRd/GhrrX9Mmtfm1kG
    X1+qO3XOn8WqPWNWBFBgZ+UKfNu5PUABU0/ePB/lnQKBgQDzEfpZHbYQocPlw9HR
    2WUq/aDn9t8fnuyO9Qbvxxg2WzMD9B8SoTleiEUAFJJzblaSbZXnN2hNf0WmF3gz
    C5Bgzd3glKsa/KZh2jo47pHsjScG/eOS+Qa01x/xzr6tGKPARP+D6qIwWU52JfQg
    3LF5cgcafZs7N9tGMRhapdbx7QKBgQDYwGXtQ5IfFKf32DCaQj5aFY4JW1ZsCfA+
    VD9X6CsxAYO4KbJ1uWLck3BYxvrdqnxsbpj/cz4nkJIQV3EWJIv7xn58rFUbtyKg
    doBNZnFgxHixD7LBmEpaj5vbYojjqxCQ+G0QBI/i7+lUVHMihRGyM+FBFq9XbJPs
    QG20g9lCQwKBgQClTU+ctUjwzKIlqmMRvC9B6lQ4DDq3DWRA4D/EZvh/Vsw93xIW
    oFAcir2qDVN/bsUvNZlhMdwb//bEumdDB5U7UCWZKmGmq7UXDMrVluDkJyYoahcP
    B43ZBAe0cW5Y103dXs8JzlJYYROr46m/g3aqabKNAGjF//l+JbszQl8IDQKBgAZe
    sSAl6jdrnfwUqGkAJWD0XTY9Lu8B48ORKkNlGU/ZYYuZ/hqjlhoxYw3Y2yqEhh+R
    qIFpW5xCDWjZiQNDk7GUhccYMXAdE7Fvihm8NvzHCVz6vyAdX6IFsmjiHm/CaTw5
    cMsVtzzOHCdUTAXprzlzeN0203RYRoic5Bx3+3yNAoGBAJlgPA3CFmSIBqrnryEu
    DeWkSwpz3PP5kF9sTeWmGvMK5GgJn2RfI9s++2TOfi+J37Mh3gWWI/sTEoADJyck
    Lsib0QErRu5fvVFKcrcr3U6ZJS2pRW64sI5Gg4ZSXJarvmfa3tIxRuypY4m4dMTe
    16KCrCLeYKXahuT3hTTsyya2
    -----END PRIVATE KEY-----
    """

private let rsaPublicKeyPEM = """
    -----BEGIN PUBLIC KEY-----
    MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAzc3ZflN6RhcwiAFFGJfn
    0rb4gnBNXvyhbvdnpKm91hixgcJyIOp2UrlVDnOfXTUcbIoDB4dPPzDadnj0K5yG
    tzl+bcnftiqDgKTIhaHZyP/ZzS3iq/sp69lgERT7PccjSxg5/I8LyYA0SSLbv5ls
    2wvU52nACg8WzHaOp+fux0g24P5tYhs7VhbBaq+IXvuGL9lP5bDi9SzsG0ue04z3
    scBt1mSTNtkZ8q/uzHwnJrOKBHns/RnNt4Tqib6AJY/in8iK1XBXQmwSxCW75BkI
    BB4q0ZpfB58E2k+pRhydVE4Xza2StUpNVNtKs0pnazEfzmEiRX8nAcMmOFMeKoVr
    BwIDAQAB
    -----END PUBLIC KEY-----
    """

/// The modulus of `rsaPublicKeyPEM`, base64url, for JWKS tests.
private let rsaModulus = "zc3ZflN6RhcwiAFFGJfn0rb4gnBNXvyhbvdnpKm91hixgcJyIOp2UrlVDnOfXTUcbIoDB4dPPzDadnj0K5yGtzl-bcnftiqDgKTIhaHZyP_ZzS3iq_sp69lgERT7PccjSxg5_I8LyYA0SSLbv5ls2wvU52nACg8WzHaOp-fux0g24P5tYhs7VhbBaq-IXvuGL9lP5bDi9SzsG0ue04z3scBt1mSTNtkZ8q_uzHwnJrOKBHns_RnNt4Tqib6AJY_in8iK1XBXQmwSxCW75BkIBB4q0ZpfB58E2k-pRhydVE4Xza2StUpNVNtKs0pnazEfzmEiRX8nAcMmOFMeKoVrBw"

private let secret = "test-secret-at-least-thirty-two-bytes-long"

/// All claims as one JSON object, for signing test tokens with jwt-kit directly.
private struct RawClaims: JWTPayload {
    var claims: [String: JSONValue]
    init(_ claims: [String: JSONValue]) { self.claims = claims }
    init(from decoder: any Decoder) throws { claims = try decoder.singleValueContainer().decode([String: JSONValue].self) }
    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(claims)
    }
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

private func base64URL(_ data: Data) -> String {
    data.base64EncodedString()
        .replacingOccurrences(of: "+", with: "-")
        .replacingOccurrences(of: "/", with: "_")
        .replacingOccurrences(of: "=", with: "")
}

private func base64URL(_ json: String) -> String { base64URL(Data(json.utf8)) }

private var now: Double { Date().timeIntervalSince1970 }

private func sign(_ claims: [String: JSONValue], with keys: JWTKeyCollection, kid: String? = nil) async throws -> String {
    try await keys.sign(RawClaims(claims), kid: kid.map { JWKIdentifier(string: $0) })
}

/// A token with the given header, payload and an HS256 signature made with `hmacSecret`,
/// whatever `alg` the header claims.
private func hs256Token(header: String, payload: String, hmacSecret: String) async throws -> String {
    let keys = JWTKeyCollection()
    await keys.add(hmac: HMACKey(from: hmacSecret), digestAlgorithm: .sha256)
    let signingInput = base64URL(header) + "." + base64URL(payload)
    let signature = try await keys.getKey().sign(Array(signingInput.utf8))
    return signingInput + "." + base64URL(Data(signature))
}

private func hmacVerifier(_ options: TokenVerificationOptions = .init()) async throws -> TokenVerifier {
    try await TokenVerifier(keys: [.hmacSecret(secret)], options: options)
}

private func expect(
    _ error: TokenVerificationError,
    verifying token: String,
    with verifier: TokenVerifier,
    sourceLocation: SourceLocation = #_sourceLocation
) async {
    await #expect(throws: error, sourceLocation: sourceLocation) {
        try await verifier.verify(token)
    }
}

// MARK: - HS256

@Suite("TokenVerifier")
struct TokenVerifierTests {
    let minter = TokenMinter(hs256Secret: secret)

    @Test func validHS256TokenIsAccepted() async throws {
        let verifier = try await hmacVerifier()
        let token = try await minter.mint(subject: "alice", ttl: .seconds(60))
        let verified = try await verifier.verify(token)
        #expect(verified.subject == "alice")
        #expect(verified.claims["sub"] == .string("alice"))
        let expiresAt = try #require(verified.expiresAt)
        #expect(abs(expiresAt.timeIntervalSinceNow - 60) < 5)
        #expect(verified.claims["iat"]?.numberValue != nil)
    }

    @Test func mintedTokenHasHS256HeaderAndWholeSecondDates() async throws {
        let token = try await minter.mint(
            subject: "alice", ttl: .milliseconds(1500), notBefore: Date(timeIntervalSince1970: 1_000.7),
            issuer: "iss", audience: "aud")
        let parts = token.split(separator: ".")
        try #require(parts.count == 3)
        let header = try JSONDecoder().decode([String: JSONValue].self, from: try #require(decode(parts[0])))
        #expect(header == ["alg": .string("HS256"), "typ": .string("JWT")])
        let claims = try JSONDecoder().decode([String: JSONValue].self, from: try #require(decode(parts[1])))
        for name in ["iat", "exp", "nbf"] {
            let value = try #require(claims[name]?.numberValue)
            #expect(value == value.rounded(), "\(name) is not whole seconds")
        }
        #expect(claims["nbf"] == .number(1000))
        #expect(claims["iss"] == .string("iss"))
        #expect(claims["aud"] == .string("aud"))
    }

    @Test func wrongSecretIsBadSignature() async throws {
        let verifier = try await hmacVerifier()
        let token = try await TokenMinter(hs256Secret: secret + "-other").mint(subject: "alice")
        await expect(.badSignature, verifying: token, with: verifier)
    }

    @Test func tamperedPayloadIsBadSignature() async throws {
        let verifier = try await hmacVerifier()
        let parts = try await minter.mint(subject: "alice").split(separator: ".")
        let forged = [String(parts[0]), base64URL(#"{"sub":"admin"}"#), String(parts[2])].joined(separator: ".")
        await expect(.badSignature, verifying: forged, with: verifier)
    }

    // MARK: Time

    @Test func expiredBeyondLeewayIsRejected() async throws {
        let verifier = try await hmacVerifier(.init(leeway: .seconds(5)))
        let token = try await minter.mint(subject: "alice", ttl: .seconds(-60))
        await expect(.expired, verifying: token, with: verifier)
    }

    @Test func expiredWithinLeewayIsAccepted() async throws {
        let verifier = try await hmacVerifier(.init(leeway: .seconds(30)))
        let token = try await minter.mint(subject: "alice", ttl: .seconds(-10))
        let verified = try await verifier.verify(token)
        #expect(verified.subject == "alice")
        #expect(try #require(verified.expiresAt) < Date())
    }

    @Test func notBeforeInTheFutureIsRejected() async throws {
        let verifier = try await hmacVerifier(.init(leeway: .seconds(5)))
        let token = try await minter.mint(subject: "alice", notBefore: Date().addingTimeInterval(120))
        await expect(.notYetValid, verifying: token, with: verifier)
    }

    @Test func notBeforeWithinLeewayIsAccepted() async throws {
        let verifier = try await hmacVerifier(.init(leeway: .seconds(30)))
        let token = try await minter.mint(subject: "alice", notBefore: Date().addingTimeInterval(10))
        #expect(try await verifier.verify(token).subject == "alice")
    }

    @Test func missingExpirationIsAcceptedUnlessRequired() async throws {
        let token = try await hs256Token(
            header: #"{"alg":"HS256","typ":"JWT"}"#, payload: #"{"sub":"alice"}"#, hmacSecret: secret)
        let verified = try await hmacVerifier().verify(token)
        #expect(verified.expiresAt == nil)
        await expect(.malformed, verifying: token, with: try await hmacVerifier(.init(requireExpiration: true)))
    }

    @Test func nonNumericExpirationIsMalformed() async throws {
        let token = try await hs256Token(
            header: #"{"alg":"HS256"}"#, payload: #"{"sub":"alice","exp":"tomorrow"}"#, hmacSecret: secret)
        await expect(.malformed, verifying: token, with: try await hmacVerifier())
    }

    // MARK: Algorithms

    @Test(arguments: ["none", "None", "NONE"])
    func algNoneIsRejected(alg: String) async throws {
        let verifier = try await hmacVerifier()
        let payload = #"{"sub":"mallory","exp":\#(Int(now) + 600)}"#
        let token = base64URL(#"{"alg":"\#(alg)","typ":"JWT"}"#) + "." + base64URL(payload) + "."
        await expect(.unsupportedAlgorithm, verifying: token, with: verifier)
    }

    /// The classic confusion attack: HS256 keyed with the verifier's RSA public key PEM text.
    @Test func hs256KeyedWithRSAPublicKeyPEMIsRejected() async throws {
        let verifier = try await TokenVerifier(keys: [.publicKeyPEM(rsaPublicKeyPEM)])
        let token = try await TokenMinter(hs256Secret: rsaPublicKeyPEM).mint(subject: "mallory")
        await expect(.unsupportedAlgorithm, verifying: token, with: verifier)

        // Relabelled as RS256, the HMAC is checked as an RSA signature, and fails.
        let relabelled = try await hs256Token(
            header: #"{"alg":"RS256","typ":"JWT"}"#, payload: #"{"sub":"mallory"}"#, hmacSecret: rsaPublicKeyPEM)
        await expect(.badSignature, verifying: relabelled, with: verifier)

        // With an HMAC secret configured too, only that secret verifies HS256.
        let both = try await TokenVerifier(keys: [.hmacSecret(secret), .publicKeyPEM(rsaPublicKeyPEM)])
        await expect(.badSignature, verifying: token, with: both)
    }

    /// jwt-kit alone accepts a valid HS256 signature under any `alg` header; the verifier does not.
    @Test(arguments: ["HS512", "RS256", "ES256", "hs256"])
    func algHeaderMustMatchTheKey(alg: String) async throws {
        let token = try await hs256Token(
            header: #"{"alg":"\#(alg)","typ":"JWT"}"#, payload: #"{"sub":"alice"}"#, hmacSecret: secret)
        let expected: TokenVerificationError = alg == "RS256" || alg == "ES256" ? .badSignature : .unsupportedAlgorithm
        let verifier = try await TokenVerifier(keys: [
            .hmacSecret(secret), .publicKeyPEM(rsaPublicKeyPEM), .publicKeyPEM(ES256PrivateKey().publicKey.pemRepresentation),
        ])
        await expect(expected, verifying: token, with: verifier)
    }

    @Test func missingAlgIsMalformed() async throws {
        let token = try await hs256Token(header: #"{"typ":"JWT"}"#, payload: #"{"sub":"alice"}"#, hmacSecret: secret)
        await expect(.malformed, verifying: token, with: try await hmacVerifier())
    }

    @Test func critHeaderIsMalformed() async throws {
        let token = try await hs256Token(
            header: #"{"alg":"HS256","crit":["exp"],"exp":1}"#, payload: #"{"sub":"alice"}"#, hmacSecret: secret)
        await expect(.malformed, verifying: token, with: try await hmacVerifier())
    }

    // MARK: Public keys

    @Test func rs256WithPublicKeyPEM() async throws {
        let signing = JWTKeyCollection()
        await signing.add(rsa: try Insecure.RSA.PrivateKey(pem: rsaPrivateKeyPEM), digestAlgorithm: .sha256)
        let token = try await sign(["sub": .string("bob"), "exp": .number(now + 60)], with: signing)

        let verifier = try await TokenVerifier(keys: [.publicKeyPEM(rsaPublicKeyPEM)])
        #expect(try await verifier.verify(token).subject == "bob")

        let hmacOnly = try await hmacVerifier()
        await expect(.unsupportedAlgorithm, verifying: token, with: hmacOnly)
    }

    @Test func es256WithPublicKeyPEM() async throws {
        let key = ES256PrivateKey()
        let signing = JWTKeyCollection()
        await signing.add(ecdsa: key)
        let token = try await sign(["sub": .string("carol")], with: signing)

        let verifier = try await TokenVerifier(keys: [.publicKeyPEM(key.publicKey.pemRepresentation)])
        #expect(try await verifier.verify(token).subject == "carol")

        let otherKey = try await TokenVerifier(keys: [.publicKeyPEM(ES256PrivateKey().publicKey.pemRepresentation)])
        await expect(.badSignature, verifying: token, with: otherKey)
    }

    @Test func eddsaWithPublicKeyPEM() async throws {
        let key = try EdDSA.PrivateKey()
        let signing = JWTKeyCollection()
        await signing.add(eddsa: key)
        let token = try await sign(["sub": .string("dave")], with: signing)

        let verifier = try await TokenVerifier(keys: [.publicKeyPEM(key.publicKey.pemRepresentation)])
        #expect(try await verifier.verify(token).subject == "dave")

        let otherKey = try await TokenVerifier(keys: [.publicKeyPEM(try EdDSA.PrivateKey().publicKey.pemRepresentation)])
        await expect(.badSignature, verifying: token, with: otherKey)
    }

    @Test func severalKeysEachVerifyTheirOwnTokens() async throws {
        let ecKey = ES256PrivateKey()
        let verifier = try await TokenVerifier(keys: [
            .hmacSecret(secret), .publicKeyPEM(rsaPublicKeyPEM), .publicKeyPEM(ecKey.publicKey.pemRepresentation),
        ])
        let ecSigning = JWTKeyCollection()
        await ecSigning.add(ecdsa: ecKey)
        let rsaSigning = JWTKeyCollection()
        await rsaSigning.add(rsa: try Insecure.RSA.PrivateKey(pem: rsaPrivateKeyPEM), digestAlgorithm: .sha256)

        #expect(try await verifier.verify(try await minter.mint(subject: "h")).subject == "h")
        #expect(try await verifier.verify(try await sign(["sub": .string("r")], with: rsaSigning)).subject == "r")
        #expect(try await verifier.verify(try await sign(["sub": .string("e")], with: ecSigning)).subject == "e")
    }

    // MARK: JWKS

    @Test func jwksSelectsKeysByKid() async throws {
        let ec1 = ES256PrivateKey()
        let ec2 = ES256PrivateKey()
        let ed = try EdDSA.PrivateKey()
        func ecJWK(_ key: ES256PrivateKey, kid: String) throws -> String {
            let parameters = try #require(key.publicKey.parameters)
            return #"{"kty":"EC","crv":"P-256","x":"\#(parameters.x)","y":"\#(parameters.y)","kid":"\#(kid)","alg":"ES256","use":"sig"}"#
        }
        let jwks = """
            {"keys":[
              \(try ecJWK(ec1, kid: "ec-1")),
              \(try ecJWK(ec2, kid: "ec-2")),
              {"kty":"RSA","n":"\(rsaModulus)","e":"AQAB","kid":"rsa-1"},
              {"kty":"OKP","crv":"Ed25519","x":"\(base64URL(ed.publicKey.rawRepresentation))","kid":"ed-1"},
              {"kty":"RSA","n":"\(rsaModulus)","e":"AQAB","kid":"enc-1","alg":"RSA-OAEP","use":"enc"}
            ]}
            """
        let verifier = try await TokenVerifier(keys: [.jwksJSON(jwks)])

        let ec2Signing = JWTKeyCollection()
        await ec2Signing.add(ecdsa: ec2)
        #expect(try await verifier.verify(try await sign(["sub": .string("k2")], with: ec2Signing, kid: "ec-2")).subject == "k2")
        // Without a kid every ES256 key is tried.
        #expect(try await verifier.verify(try await sign(["sub": .string("nokid")], with: ec2Signing)).subject == "nokid")
        // A kid naming another key: only that key is tried.
        await expect(.badSignature, verifying: try await sign(["sub": .string("x")], with: ec2Signing, kid: "ec-1"), with: verifier)
        // An unknown kid, with no key configured outside the JWKS.
        await expect(.badSignature, verifying: try await sign(["sub": .string("x")], with: ec2Signing, kid: "zzz"), with: verifier)

        let rsaSigning = JWTKeyCollection()
        await rsaSigning.add(rsa: try Insecure.RSA.PrivateKey(pem: rsaPrivateKeyPEM), digestAlgorithm: .sha256)
        #expect(try await verifier.verify(try await sign(["sub": .string("r")], with: rsaSigning, kid: "rsa-1")).subject == "r")

        let edSigning = JWTKeyCollection()
        await edSigning.add(eddsa: ed)
        #expect(try await verifier.verify(try await sign(["sub": .string("e")], with: edSigning, kid: "ed-1")).subject == "e")

        // HS256 against a JWKS of public keys: no such algorithm here.
        await expect(.unsupportedAlgorithm, verifying: try await minter.mint(subject: "h"), with: verifier)
    }

    // MARK: Issuer, audience, subject

    @Test func issuerMustMatchWhenConfigured() async throws {
        let verifier = try await hmacVerifier(.init(issuer: "https://auth.example"))
        #expect(try await verifier.verify(try await minter.mint(subject: "a", issuer: "https://auth.example")).subject == "a")
        await expect(.wrongIssuer, verifying: try await minter.mint(subject: "a", issuer: "https://evil.example"), with: verifier)
        await expect(.wrongIssuer, verifying: try await minter.mint(subject: "a"), with: verifier)
    }

    @Test func audienceMayBeStringOrArray() async throws {
        let verifier = try await hmacVerifier(.init(audience: "switchboard"))
        #expect(try await verifier.verify(try await minter.mint(subject: "a", audience: "switchboard")).subject == "a")
        let inArray = try await minter.mint(subject: "a", claims: ["aud": .array([.string("other"), .string("switchboard")])])
        #expect(try await verifier.verify(inArray).subject == "a")

        await expect(.wrongAudience, verifying: try await minter.mint(subject: "a", audience: "other"), with: verifier)
        let notInArray = try await minter.mint(subject: "a", claims: ["aud": .array([.string("other")])])
        await expect(.wrongAudience, verifying: notInArray, with: verifier)
        await expect(.wrongAudience, verifying: try await minter.mint(subject: "a"), with: verifier)
    }

    @Test func subjectMustBeANonEmptyString() async throws {
        let verifier = try await hmacVerifier()
        for payload in [#"{"exp":\#(Int(now) + 60)}"#, #"{"sub":""}"#, #"{"sub":42}"#] {
            let token = try await hs256Token(header: #"{"alg":"HS256","typ":"JWT"}"#, payload: payload, hmacSecret: secret)
            await expect(.missingSubject, verifying: token, with: verifier)
        }
    }

    @Test func customClaimsAreVisible() async throws {
        let verifier = try await hmacVerifier()
        let token = try await minter.mint(
            subject: "alice",
            claims: ["rooms": .array([.string("lobby"), .string("ops")]), "admin": .bool(true)]
        )
        let verified = try await verifier.verify(token)
        #expect(verified.claims["rooms"] == .array([.string("lobby"), .string("ops")]))
        #expect(verified.claims["rooms"]?.arrayValue?.compactMap(\.stringValue) == ["lobby", "ops"])
        #expect(verified.claims["admin"] == .bool(true))
    }

    // MARK: Garbage

    @Test(arguments: ["", "abc", "a.b.c", "a.b", "a.b.c.d", "..", "Bearer x.y.z", "e30.e30.", "!!!.e30.e30"])
    func garbageIsMalformed(token: String) async throws {
        await expect(.malformed, verifying: token, with: try await hmacVerifier())
    }

    @Test func nonObjectPayloadIsMalformed() async throws {
        let token = try await hs256Token(header: #"{"alg":"HS256"}"#, payload: #"["sub"]"#, hmacSecret: secret)
        await expect(.malformed, verifying: token, with: try await hmacVerifier())
    }

    // MARK: Configuration errors

    @Test func unusableKeysAreRefused() async throws {
        await #expect(throws: TokenKeyError.noKeys) { try await TokenVerifier(keys: []) }
        await #expect(throws: TokenKeyError.secretTooShort(minimumBytes: 32)) {
            try await TokenVerifier(keys: [.hmacSecret("switchboard-dev-secret")])
        }
        await #expect(throws: TokenKeyError.unrecognizedPublicKey) {
            try await TokenVerifier(keys: [.publicKeyPEM("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")])
        }
        await #expect(throws: TokenKeyError.unrecognizedPublicKey) {
            try await TokenVerifier(keys: [.publicKeyPEM(rsaPrivateKeyPEM)])
        }
        await #expect(throws: TokenKeyError.invalidJWKS(reason: "not a JSON Web Key Set")) {
            try await TokenVerifier(keys: [.jwksJSON("{}")])
        }
        await #expect(throws: TokenKeyError.invalidJWKS(reason: "no signing keys")) {
            try await TokenVerifier(keys: [.jwksJSON(#"{"keys":[]}"#)])
        }
        await #expect(throws: TokenKeyError.invalidJWKS(reason: "a key has no kid")) {
            try await TokenVerifier(keys: [.jwksJSON(#"{"keys":[{"kty":"RSA","n":"\#(rsaModulus)","e":"AQAB"}]}"#)])
        }
        await #expect(throws: TokenKeyError.secretTooShort(minimumBytes: 32)) {
            try await TokenMinter(hs256Secret: "short").mint(subject: "a")
        }
    }

    @Test func developmentSecretIsUsable() async throws {
        let verifier = try await TokenVerifier(keys: [.hmacSecret(TokenMinter.developmentSecret)])
        let token = try await TokenMinter(hs256Secret: TokenMinter.developmentSecret).mint(subject: "dev")
        #expect(try await verifier.verify(token).subject == "dev")
    }

    @Test func errorReasonsAndCodesAreStable() {
        let expected: [(TokenVerificationError, String, String)] = [
            (.missing, "token missing", "token_missing"),
            (.malformed, "malformed token", "invalid_token"),
            (.badSignature, "invalid token signature", "invalid_signature"),
            (.expired, "token expired", "token_expired"),
            (.notYetValid, "token not yet valid", "token_not_yet_valid"),
            (.wrongIssuer, "wrong token issuer", "wrong_issuer"),
            (.wrongAudience, "wrong token audience", "wrong_audience"),
            (.missingSubject, "token has no subject", "missing_subject"),
            (.unsupportedAlgorithm, "unsupported token algorithm", "unsupported_algorithm"),
        ]
        for (error, reason, code) in expected {
            #expect(error.reason == reason)
            #expect(error.code == code)
        }
    }

    @Test func concurrentVerificationsAgree() async throws {
        let verifier = try await hmacVerifier()
        let tokens = try await (0..<50).asyncMap { try await minter.mint(subject: "user-\($0)") }
        let subjects = try await withThrowingTaskGroup(of: String.self) { group in
            for token in tokens {
                group.addTask { try await verifier.verify(token).subject }
            }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(subjects == Set((0..<50).map { "user-\($0)" }))
    }
}

private func decode(_ segment: Substring) -> Data? {
    var base64 = segment.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while base64.count % 4 != 0 { base64 += "=" }
    return Data(base64Encoded: base64)
}

extension Sequence {
    fileprivate func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
