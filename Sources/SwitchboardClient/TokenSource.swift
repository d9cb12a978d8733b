/// Where the client gets the JWT it connects with.
public enum TokenSource: Sendable {
    /// The same token for every connection attempt.
    case fixed(String)
    /// A function called before every connection attempt (so that an expired token is replaced),
    /// one call at a time. When it throws, the client stops with
    /// ``DisconnectReason/tokenUnavailable(_:)``: it does not retry a failing provider.
    case provider(@Sendable () async throws -> String)

    /// Whether another call can give another token.
    var canRefresh: Bool {
        if case .provider = self { return true }
        return false
    }

    func token() async throws -> String {
        switch self {
        case .fixed(let token): return token
        case .provider(let provider): return try await provider()
        }
    }
}
