import Testing

@testable import SwitchboardRedis

@Suite("Redis configuration")
struct RedisConfigurationTests {
    @Test("defaults")
    func defaults() {
        let configuration = RedisConfiguration()
        #expect(configuration.host == "127.0.0.1")
        #expect(configuration.port == 6379)
        #expect(configuration.database == 0)
        #expect(configuration.username == nil && configuration.password == nil)
        #expect(configuration.protocolVersion == .resp2)
        #expect(configuration.commandTimeout == .seconds(5))
        #expect(configuration.poolSize == 2)
        #expect(configuration.decoderLimits.maxBulkLength == 64 * 1024 * 1024)
    }

    @Test("URLs parse")
    func urls() throws {
        let plain = try RedisConfiguration(url: "redis://cache.internal")
        #expect(plain.host == "cache.internal" && plain.port == 6379 && plain.database == 0 && plain.password == nil)

        let full = try RedisConfiguration(url: "redis://alice:s%40cret@10.0.0.5:6380/3")
        #expect(full.host == "10.0.0.5" && full.port == 6380 && full.database == 3)
        #expect(full.username == "alice" && full.password == "s@cret")

        let passwordOnly = try RedisConfiguration(url: "REDIS://:pw@localhost/")
        #expect(passwordOnly.username == nil && passwordOnly.password == "pw" && passwordOnly.database == 0)

        let ipv6 = try RedisConfiguration(url: "redis://[::1]:7000")
        #expect(ipv6.host == "::1" && ipv6.port == 7000)
    }

    @Test("bad URLs are rejected with a reason", arguments: [
        "rediss://host:6379",  // TLS
        "http://host",
        "unix:///tmp/redis.sock",
        "redis://",
        "redis://host:0",
        "redis://host:70000",
        "redis://host/abc",
        "redis://host/-1",
        "redis://host/1/2",
        "redis://alice@host",
        "redis://host?db=2",
        "not a url",
    ])
    func badURLs(url: String) {
        let error = #expect(throws: RedisError.self) { _ = try RedisConfiguration(url: url) }
        guard case .invalidConfiguration(let reason) = error else {
            Issue.record("expected invalidConfiguration, got \(String(describing: error))")
            return
        }
        #expect(!reason.isEmpty)
    }

    @Test("TLS is named in the error")
    func tlsMessage() {
        #expect(throws: RedisError.invalidConfiguration("TLS (rediss://) is not supported")) {
            _ = try RedisConfiguration(url: "rediss://host")
        }
    }

    @Test("backoff doubles from 100 ms to a 5 s cap, shortened by at most the jitter")
    func backoff() {
        let backoff = ReconnectBackoff()
        var generator = SplitMix64(seed: 7)
        #expect(backoff.delay(afterFailures: 0, using: &generator) == .zero)
        let expected: [Duration] = [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800),
                                    .milliseconds(1600), .milliseconds(3200), .seconds(5), .seconds(5)]
        for (index, full) in expected.enumerated() {
            for _ in 0..<20 {
                let delay = backoff.delay(afterFailures: index + 1, using: &generator)
                #expect(delay <= full && delay >= full * 0.8, "attempt \(index + 1): \(delay)")
            }
        }
        #expect(backoff.delay(afterFailures: 10_000, using: &generator) <= .seconds(5))
        let exact = ReconnectBackoff(jitter: 0)
        #expect(exact.delay(afterFailures: 3, using: &generator) == .milliseconds(400))
    }

    @Test("a configuration that cannot work is rejected by the client")
    func invalidConfiguration() {
        #expect(throws: RedisError.self) { _ = try RedisClient(configuration: RedisConfiguration(poolSize: 0)) }
        #expect(throws: RedisError.self) { _ = try RedisClient(configuration: RedisConfiguration(username: "u")) }
        #expect(throws: RedisError.self) { _ = try RedisClient(configuration: RedisConfiguration(commandTimeout: .zero)) }
    }
}
