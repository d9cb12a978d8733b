import Foundation
import NIOCore
import Testing

@testable import Switchboard
@testable import SwitchboardRedis

/// Pub/sub is at most once: the broker checks delivery instead of trusting it. A probe of the
/// pub/sub connection finds a subscription that delivers nothing while its connection stays open.
@Suite("RedisBroker: delivery checks", RedisServer.availability)
struct RedisDeliveryChecksTests {
    static func contents(_ events: [[String: JSONValue]]) -> [String] {
        RedisBrokerTests.contents(events)
    }

    @Test("a probe of an idle pub/sub connection comes back: the node is ready")
    func probeComesBack() async throws {
        try await RedisBrokerTests.withTwoNodes { _, _, brokerA, _ in
            #expect(await brokerA.probe())
            #expect(await brokerA.probe())
            #expect(brokerA.subscriptionConfirmed)
            #expect(brokerA.notReadyReason == nil)
        }
    }

    @Test("a wedged subscription (open, delivering nothing): the probe fails, the node is not ready, reconnects, and gets what it missed from history, in order, once")
    func wedgedSubscriptionIsReestablished() async throws {
        let redis = try await RedisServer.start()
        let proxy = try await ChaosProxy.start(upstreamPort: redis.port, reset: false)
        var viaProxy = redis.configuration
        viaProxy.port = proxy.port
        let checks = RedisDeliveryChecks(probeTimeout: .milliseconds(500))
        do {
            try await RedisBrokerTests.withTwoNodes(on: redis, checks: checks, pubsubA: viaProxy) { a, b, brokerA, _ in
                let alice = try await a.open("alice")
                _ = try await ResumeTests.joinPosition(alice, "lobby")
                let bob = try await b.open("bob")
                _ = try await ResumeTests.joinPosition(bob, "lobby")
                let first = try await ResumeTests.send(bob, "lobby", "1")
                _ = try await Resume.events(alice, room: "lobby", through: first)
                #expect(await brokerA.probe(), "through the proxy, before the wedge")
                // Node A's pub/sub connection stays open but carries nothing from now on; bob
                // goes on publishing, and node A's Redis client sees no error.
                let reconnects = brokerA.pubsub.reconnectCount
                proxy.wedgeOpenConnections()
                var positions = [first]
                for index in 2...6 { positions.append(try await ResumeTests.send(bob, "lobby", "\(index)")) }
                #expect(brokerA.isConnected, "the wedged connection looks open")
                #expect(await brokerA.probe() == false)
                #expect(brokerA.notReadyReason == "redis pub/sub not confirmed")
                try await waitUntil("node A's pub/sub connection is re-established", timeout: .seconds(10)) {
                    brokerA.pubsub.reconnectCount > reconnects && brokerA.pubsub.isConnected
                }
                #expect(brokerA.notReadyReason == "redis pub/sub not confirmed", "not ready until a probe comes back")
                let missed = try await Resume.events(alice, room: "lobby", through: positions[5])
                #expect(Self.contents(missed) == (2...6).map(String.init))
                ResumeTests.expectConsecutive(missed, after: first)
                // Live again, and nothing came twice: the next event follows at once.
                let live = try await ResumeTests.send(bob, "lobby", "7")
                let after = try await Resume.events(alice, room: "lobby", through: live)
                #expect(Self.contents(after) == ["7"])
                ResumeTests.expectConsecutive(after, after: positions[5])
                #expect(await brokerA.probe())
                #expect(brokerA.notReadyReason == nil)
                for client in [alice, bob] { await client.close() }
            }
        } catch {
            await proxy.stop()
            await redis.stop()
            throw error
        }
        await proxy.stop()
        await redis.stop()
    }

    @Test("run() probes an idle pub/sub connection every probeInterval on the broker's clock: a wedged one is re-established")
    func probeRunsOnTheClock() async throws {
        let redis = try await RedisServer.start()
        let proxy = try await ChaosProxy.start(upstreamPort: redis.port, reset: false)
        var viaProxy = redis.configuration
        viaProxy.port = proxy.port
        let clock = TestClock()
        let checks = RedisDeliveryChecks(probeTimeout: .milliseconds(500))
        do {
            try await RedisBrokerTests.withTwoNodes(on: redis, checks: checks, pubsubA: viaProxy, clock: clock) { a, b, brokerA, _ in
                let alice = try await a.open("alice")
                _ = try await ResumeTests.joinPosition(alice, "lobby")
                let bob = try await b.open("bob")
                _ = try await ResumeTests.joinPosition(bob, "lobby")
                let reconnects = brokerA.pubsub.reconnectCount
                proxy.wedgeOpenConnections()
                let missed = try await ResumeTests.send(bob, "lobby", "missed")
                // The clock moves a probe interval at a time until the timer has probed, found
                // the connection wedged and re-established it.
                try await waitUntil("node A's timer re-establishes its pub/sub connection", timeout: .seconds(10)) {
                    clock.advance(by: checks.probeInterval)
                    return brokerA.pubsub.reconnectCount > reconnects && brokerA.pubsub.isConnected
                }
                #expect(Self.contents(try await Resume.events(alice, room: "lobby", through: missed)) == ["missed"])
                for client in [alice, bob] { await client.close() }
            }
        } catch {
            await proxy.stop()
            await redis.stop()
            throw error
        }
        await proxy.stop()
        await redis.stop()
    }

    @Test("delivery checks with an interval or a timeout that is not positive are refused")
    func invalidChecks() async throws {
        let redis = RedisConfiguration(port: 1)
        #expect(throws: RedisError.self) {
            _ = try RedisBroker(configuration: redis, checks: RedisDeliveryChecks(probeTimeout: .zero), clock: TestClock())
        }
        #expect(throws: RedisError.self) {
            _ = try RedisBroker(configuration: redis, checks: RedisDeliveryChecks(probeInterval: .seconds(-1)), clock: TestClock())
        }
    }
}
