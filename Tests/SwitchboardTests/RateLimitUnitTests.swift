import Foundation
import NIOCore
import Testing
@testable import Switchboard
@testable import SwitchboardCLI

@Suite("Rate limits: buckets, address keys, the address table, options")
struct RateLimitUnitTests {
    @Test("a bucket gives its burst at once, then one token per interval; a refusal takes nothing")
    func tokenBucket() {
        let (interval, tolerance) = RateLimit(perSecond: 10, burst: 4).schedule
        #expect(interval == 100_000_000 && tolerance == 300_000_000)
        var bucket = TokenSchedule.full
        for _ in 0..<4 {
            #expect(TokenSchedule.take(&bucket, interval: interval, tolerance: tolerance, now: 1_000) == nil)
        }
        #expect(TokenSchedule.take(&bucket, interval: interval, tolerance: tolerance, now: 1_000) == 100_000_000)
        // Refusals do not push the bucket further out.
        #expect(TokenSchedule.take(&bucket, interval: interval, tolerance: tolerance, now: 1_000) == 100_000_000)
        #expect(TokenSchedule.take(&bucket, interval: interval, tolerance: tolerance, now: 100_001_000) == nil)
        #expect(TokenSchedule.take(&bucket, interval: interval, tolerance: tolerance, now: 100_001_000) != nil)
        // After a quiet period the whole burst is back, no more.
        #expect(TokenSchedule.isFull(bucket, now: 500_001_000))
        var taken = 0
        while TokenSchedule.take(&bucket, interval: interval, tolerance: tolerance, now: 10_000_000_000) == nil { taken += 1 }
        #expect(taken == 4)
        #expect(TokenSchedule.milliseconds(1) == 1 && TokenSchedule.milliseconds(1_000_001) == 2 && TokenSchedule.seconds(1_000_000_001) == 2)
    }

    @Test("nonsense limits are clamped, never a trap")
    func extremeLimits() {
        for limit in [RateLimit(perSecond: 0, burst: 0), RateLimit(perSecond: -1, burst: -5), RateLimit(perSecond: .nan, burst: .max), RateLimit(perSecond: .infinity, burst: 1), RateLimit(perSecond: 1e-300, burst: .max)] {
            let (interval, tolerance) = limit.schedule
            #expect(interval >= 1 && tolerance >= 0)
            var bucket = TokenSchedule.full
            _ = TokenSchedule.take(&bucket, interval: interval, tolerance: tolerance, now: Int64.max / 4)
            _ = TokenSchedule.take(&bucket, interval: interval, tolerance: tolerance, now: Int64.max / 4)
        }
    }

    @Test("the event limiter: named events, other events, exempt events, and the strikes of sustained abuse")
    func eventLimiter() {
        let limiter = EventRateLimiter(
            RateLimits(
                events: ["a": RateLimit(perSecond: 1, burst: 1), "presence.heartbeat": RateLimit(perSecond: 1, burst: 1)],
                otherEvents: RateLimit(perSecond: 1, burst: 2),
                closeAfterLimited: RateLimit(perSecond: 1, burst: 2)
            ))
        var buckets: [Int64] = []
        #expect(limiter.check("presence.heartbeat", buckets: &buckets, now: { 0 }) == .allowed)
        #expect(buckets.isEmpty, "an exempt event makes no buckets")
        #expect(limiter.check("a", buckets: &buckets, now: { 0 }) == .allowed)
        #expect(buckets.count == 3)
        #expect(limiter.check("a", buckets: &buckets, now: { 0 }) == .limited(retryAfter: 1_000_000_000))
        #expect(limiter.check("b", buckets: &buckets, now: { 0 }) == .allowed)
        #expect(limiter.check("c", buckets: &buckets, now: { 0 }) == .allowed, "other events share one bucket")
        #expect(limiter.check("b", buckets: &buckets, now: { 0 }) == .limited(retryAfter: 1_000_000_000))
        #expect(limiter.check("a", buckets: &buckets, now: { 0 }) == .abusive)
        #expect(!EventRateLimiter(.off).isEnabled)
        var untouched: [Int64] = []
        #expect(EventRateLimiter(.off).check("a", buckets: &untouched, now: { Issue.record("the clock was read"); return 0 }) == .allowed)
    }

    @Test("address keys: IPv4, IPv6 by /64, IPv4-mapped as IPv4, loopback")
    func addressKeys() throws {
        func key(_ ip: String) throws -> (key: RemoteAddressKey, isLoopback: Bool)? {
            RemoteAddressKey.of(try SocketAddress(ipAddress: ip, port: 1234))
        }
        #expect(try key("192.0.2.7")?.key == .v4(0xC000_0207))
        #expect(try key("192.0.2.7")?.isLoopback == false)
        #expect(try key("127.0.0.1")?.isLoopback == true)
        #expect(try key("127.9.9.9")?.isLoopback == true)
        #expect(try key("::ffff:192.0.2.7")?.key == .v4(0xC000_0207))
        #expect(try key("::ffff:127.0.0.1")?.isLoopback == true)
        #expect(try key("::1")?.isLoopback == true)
        #expect(try key("2001:db8:1:2::1")?.key == key("2001:db8:1:2:ffff::9")?.key)
        #expect(try key("2001:db8:1:2::1")?.key != key("2001:db8:1:3::1")?.key)
        #expect(try key("2001:db8:1:2::1")?.isLoopback == false)
        #expect(RemoteAddressKey.of(try SocketAddress(unixDomainSocketPath: "/tmp/x.sock")) == nil)
    }

    @Test("the address table stays within its bound under a flood of addresses, forgetting full buckets first")
    func addressTableIsBounded() throws {
        var limits = RateLimits()
        limits.handshakesPerAddress = RateLimit(perSecond: 1, burst: 2)
        limits.exemptLoopback = false
        limits.maxTrackedAddresses = 64
        let limiter = try #require(HandshakeRateLimiter(limits, shardCount: 4))
        let hot = try SocketAddress(ipAddress: "198.51.100.1", port: 1)
        #expect(limiter.admit(hot, now: 0) == nil)
        #expect(limiter.admit(hot, now: 0) == nil)
        #expect(limiter.admit(hot, now: 0) == 1_000_000_000)
        for index in 0..<10_000 {
            let address = try SocketAddress(ipAddress: "10.\(index >> 16 & 255).\(index >> 8 & 255).\(index & 255)", port: 1)
            #expect(limiter.admit(address, now: 0) == nil)
            #expect(limiter.trackedAddresses <= 64)
        }
        // Later, when every bucket has refilled, new addresses push the full ones out.
        for index in 0..<64 {
            _ = limiter.admit(try SocketAddress(ipAddress: "172.16.0.\(index)", port: 1), now: 10_000_000_000)
        }
        #expect(limiter.trackedAddresses <= 64)
        #expect(HandshakeRateLimiter(.off) == nil)
        #expect(limiter.admit(nil, now: 0) == nil)
    }

    @Test("serve's rate-limit options")
    func serveOptions() throws {
        #expect(RateLimitArgument(argument: "20/40")?.limit == RateLimit(perSecond: 20, burst: 40))
        #expect(RateLimitArgument(argument: "0.5/5")?.limit == RateLimit(perSecond: 0.5, burst: 5))
        #expect(RateLimitArgument(argument: "off")?.limit == nil && RateLimitArgument(argument: "off") != nil)
        for bad in ["20", "20/", "/40", "-1/4", "0/4", "inf/3", "nan/3", "1e3/3", "20/0", "20/-1", "20/4/5", "", "x/y"] {
            #expect(RateLimitArgument(argument: bad) == nil, "\(bad)")
        }
        #expect(EventRateLimitArgument(argument: "=1/1") == nil)
        #expect(EventRateLimitArgument(argument: "message.send") == nil)
        #expect(AbuseLimitArgument(argument: "100/10s")?.limit == RateLimit(perSecond: 10, burst: 100))
        #expect(AbuseLimitArgument(argument: "5/0s") == nil)

        let defaults = try ServeCommand.parse([]).rateLimitConfiguration
        #expect(defaults == RateLimits())
        let parsed = try ServeCommand.parse([
            "--event-rate-limit", "message.send=5/10", "--event-rate-limit", "*=off", "--event-rate-limit", "typing.start=off",
            "--handshake-rate-limit", "2/4", "--rate-limit-loopback", "true", "--rate-limit-close-after", "off",
        ]).rateLimitConfiguration
        #expect(parsed.events["message.send"] == RateLimit(perSecond: 5, burst: 10))
        #expect(parsed.otherEvents == nil)
        #expect(parsed.exemptEvents == ["presence.heartbeat", "typing.start"])
        #expect(parsed.handshakesPerAddress == RateLimit(perSecond: 2, burst: 4))
        #expect(parsed.exemptLoopback == false)
        #expect(parsed.closeAfterLimited == nil)
        #expect(try ServeCommand.parse(["--rate-limits", "false"]).rateLimitConfiguration == .off)
        #expect(throws: (any Error).self) { try ServeCommand.parse(["--event-rate-limit", "message.send=fast"]) }
        #expect(throws: (any Error).self) { try ServeCommand.parse(["--handshake-rate-limit", "20"]) }
    }
}
