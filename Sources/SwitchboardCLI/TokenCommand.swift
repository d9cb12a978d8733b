import ArgumentParser
import Foundation
import Switchboard

/// `switchboard token`: prints a development JWT for `--sub`, signed with HS256.
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Mint a development JWT (HS256)."
    )

    /// The variable that supplies the secret when `--secret` is not given.
    static let secretEnvironmentVariable = "SWITCHBOARD_JWT_SECRET"

    @Option(help: "The subject (sub claim), e.g. a user id.")
    var sub: String

    @Option(help: """
        The HS256 secret, at least 32 bytes. Default: $SWITCHBOARD_JWT_SECRET if set and not empty, \
        else the public development secret.
        """)
    var secret: String?

    @Option(help: "Lifetime: 250ms, 30s, 5m, 1h, 2d, or seconds (fractions allowed).")
    var ttl = DurationArgument(duration: .seconds(3600))

    @Option(name: .customLong("room"), help: "A room the token grants (repeatable); adds a rooms array claim.")
    var rooms: [String] = []

    @Option(help: "The issuer (iss claim).")
    var issuer: String?

    @Option(help: "The audience (aud claim).")
    var audience: String?

    func validate() throws {
        guard !sub.isEmpty else { throw ValidationError("--sub must not be empty.") }
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment[Self.secretEnvironmentVariable]
        let secret = secret ?? environment.flatMap { $0.isEmpty ? nil : $0 } ?? TokenMinter.developmentSecret
        var claims: [String: JSONValue] = [:]
        if !rooms.isEmpty {
            claims["rooms"] = .array(rooms.map { .string($0) })
        }
        // A too-short secret throws TokenKeyError, which prints as "Error: HS256 secret too short: ...".
        let token = try await TokenMinter(hs256Secret: secret).mint(
            subject: sub, ttl: ttl.duration, claims: claims, issuer: issuer, audience: audience)
        print(token)
    }
}
