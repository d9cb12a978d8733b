/// A Lua script run with `RedisClient.eval(_:keys:arguments:)`: sent once with `SCRIPT LOAD`,
/// then run by its SHA1 with `EVALSHA`.
///
/// A script is identified by its source text; the client caches the SHA1 the server returned.
/// Declare scripts once (`static let`) rather than building their text per call.
public struct RedisScript: Sendable, Hashable {
    /// The Lua source.
    public let source: String

    public init(_ source: String) {
        self.source = source
    }
}
