import Foundation

/// Where a Redis client connects and how it behaves; every field has a documented default.
///
/// Build one in code or from a URL: `try RedisConfiguration(url: "redis://:secret@10.0.0.5:6379/2")`.
public struct RedisConfiguration: Sendable, Hashable {
    /// The RESP version a connection speaks.
    public enum ProtocolVersion: Sendable, Hashable {
        /// RESP2, Redis's default: no `HELLO` is sent.
        case resp2
        /// RESP3: `HELLO 3` (with the credentials) is the first command on each connection.
        case resp3
    }

    /// Host name or IP address. Default `127.0.0.1`.
    public var host: String
    /// TCP port. Default `6379`.
    public var port: Int
    /// ACL user name (Redis 6+); `nil` authenticates as `default`. Default `nil`.
    public var username: String?
    /// Password for `AUTH` (or `HELLO … AUTH`); `nil` sends no `AUTH`. Default `nil`.
    public var password: String?
    /// Database selected with `SELECT` on every connection (not sent when 0). Default `0`.
    public var database: Int
    /// Default `.resp2`.
    public var protocolVersion: ProtocolVersion
    /// How long a command may wait for its reply; after that it fails with `.timeout` and its
    /// connection is closed. Default 5 s.
    public var commandTimeout: Duration
    /// How long opening a TCP connection and its handshake (`HELLO`, `AUTH`, `SELECT`) may take.
    /// Default 5 s.
    public var connectTimeout: Duration
    /// Command connections of a `RedisClient` (a `RedisSubscriber` always has one). Default 2.
    public var poolSize: Int
    /// Delays between reconnection attempts. Default 100 ms doubling up to 5 s, with 20 % jitter.
    public var reconnectBackoff: ReconnectBackoff
    /// Bounds on replies. Default `RESPDecoder.Limits()` (64 MiB strings, 1 Mi elements, depth 32).
    public var decoderLimits: RESPDecoder.Limits

    public init(
        host: String = "127.0.0.1",
        port: Int = 6379,
        username: String? = nil,
        password: String? = nil,
        database: Int = 0,
        protocolVersion: ProtocolVersion = .resp2,
        commandTimeout: Duration = .seconds(5),
        connectTimeout: Duration = .seconds(5),
        poolSize: Int = 2,
        reconnectBackoff: ReconnectBackoff = ReconnectBackoff(),
        decoderLimits: RESPDecoder.Limits = RESPDecoder.Limits()
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.protocolVersion = protocolVersion
        self.commandTimeout = commandTimeout
        self.connectTimeout = connectTimeout
        self.poolSize = poolSize
        self.reconnectBackoff = reconnectBackoff
        self.decoderLimits = decoderLimits
    }

    /// Parses `redis://[[user]:password@]host[:port][/database]`; the other fields keep their
    /// defaults.
    ///
    /// User and password are percent-decoded; `redis://:secret@host` gives a password only.
    /// Throws `RedisError.invalidConfiguration` for another scheme (TLS, `rediss://`, and Unix
    /// sockets are not supported), a missing host, a port outside 1–65535, a database that is not
    /// a non-negative integer, a user without a password, or query parameters.
    public init(url: String) throws {
        self.init()
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased() else {
            throw RedisError.invalidConfiguration("not a URL: \(url)")
        }
        switch scheme {
        case "redis": break
        case "rediss": throw RedisError.invalidConfiguration("TLS (rediss://) is not supported")
        default: throw RedisError.invalidConfiguration("unsupported scheme \(scheme):// (expected redis://)")
        }
        guard let host = components.host, !host.isEmpty else {
            throw RedisError.invalidConfiguration("no host in \(url)")
        }
        self.host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if let port = components.port {
            guard (1...65535).contains(port) else { throw RedisError.invalidConfiguration("port \(port) out of range") }
            self.port = port
        }
        if components.percentEncodedUser != nil || components.percentEncodedPassword != nil {
            let user = components.user ?? ""
            guard let password = components.password else {
                throw RedisError.invalidConfiguration("a user name needs a password (redis://user:password@host)")
            }
            self.username = user.isEmpty ? nil : user
            self.password = password
        }
        let path = components.path
        if !path.isEmpty && path != "/" {
            let text = path.dropFirst()
            guard let database = Int(text), database >= 0, text.allSatisfy(\.isNumber) else {
                throw RedisError.invalidConfiguration("database must be a non-negative integer, not \(text)")
            }
            self.database = database
        }
        if components.query != nil || components.fragment != nil {
            throw RedisError.invalidConfiguration("query parameters and fragments are not supported")
        }
    }

    /// Throws `RedisError.invalidConfiguration` when a field cannot work.
    func validate() throws {
        guard !host.isEmpty else { throw RedisError.invalidConfiguration("empty host") }
        guard (1...65535).contains(port) else { throw RedisError.invalidConfiguration("port \(port) out of range") }
        guard database >= 0 else { throw RedisError.invalidConfiguration("negative database") }
        guard poolSize >= 1 else { throw RedisError.invalidConfiguration("poolSize must be at least 1") }
        guard commandTimeout > .zero, connectTimeout > .zero else {
            throw RedisError.invalidConfiguration("timeouts must be positive")
        }
        if username != nil && password == nil {
            throw RedisError.invalidConfiguration("a user name needs a password")
        }
    }
}

/// Exponential backoff between reconnection attempts: `initial`, then doubling up to `maximum`,
/// each delay shortened by a random fraction of at most `jitter` so that many clients that lost
/// the same server do not all come back at the same instant.
public struct ReconnectBackoff: Sendable, Hashable {
    /// The delay after the first failed attempt. Default 100 ms.
    public var initial: Duration
    /// The longest delay. Default 5 s.
    public var maximum: Duration
    /// Fraction (0…1) by which a delay may be randomly shortened. Default 0.2.
    public var jitter: Double

    public init(initial: Duration = .milliseconds(100), maximum: Duration = .seconds(5), jitter: Double = 0.2) {
        self.initial = initial
        self.maximum = maximum
        self.jitter = jitter
    }

    /// The delay before attempt `failures + 1`, after `failures` (≥ 1) failed attempts in a row.
    /// A connection that was up and dropped is retried at once, without a delay.
    public func delay<Generator: RandomNumberGenerator>(afterFailures failures: Int, using generator: inout Generator) -> Duration {
        guard failures > 0 else { return .zero }
        var delay = initial
        for _ in 1..<min(failures, 64) {
            delay = delay * 2
            if delay >= maximum { break }
        }
        delay = min(delay, maximum)
        let fraction = min(max(jitter, 0), 1)
        guard fraction > 0 else { return delay }
        return delay * (1 - Double.random(in: 0...fraction, using: &generator))
    }

    /// `delay(afterFailures:using:)` with the system's random numbers.
    public func delay(afterFailures failures: Int) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return delay(afterFailures: failures, using: &generator)
    }
}
