import Foundation
import NIOCore
import Testing

@testable import Switchboard
@testable import SwitchboardRedis

/// Pub/sub is at most once: the broker checks delivery instead of trusting it. A probe of the
/// pub/sub connection finds a subscription that delivers nothing while its connection stays open;
/// an audit of rooms' positions finds an event lost with no later event to reveal it.
@Suite("RedisBroker: delivery checks", RedisServer.availability)
struct RedisDeliveryChecksTests {
    static func contents(_ events: [[String: JSONValue]]) -> [String] {
        RedisBrokerTests.contents(events)
    }

    /// Does what the publish script does for `room` but sends the message to a channel nobody
    /// subscribes: the event gets its position and its place in history, and no node receives it,
    /// as when Redis pub/sub drops a message.
    static func publishLost(_ broker: RedisBroker, room: String, content: String) async throws -> EventID {
        let publication = Publication(
            room: room, event: "message.new", dataJSON: ByteBuffer(string: #"{"room":"\#(room)","from":"ghost","content":"\#(content)"}"#))
        let (prefix, suffix) = publication.envelopeAroundPosition()
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let reply = try await broker.client.eval(
            RedisBrokerScripts.publish,
            keys: [RESPCommandArgument(broker.streamKey(room)), RESPCommandArgument(broker.historyKey(room))],
            arguments: [
                RESPCommandArgument(prefix), RESPCommandArgument(suffix), RESPCommandArgument(now),
                RESPCommandArgument(RedisBroker.milliseconds(broker.history.retention)),
                RESPCommandArgument(broker.history.maxEventsPerRoom), RESPCommandArgument(EventID.newEpoch()),
                RESPCommandArgument("\(broker.keyPrefix)nobody-listens"), "-",
            ])
        return try #require(reply.string.flatMap(EventID.init), "\(reply)")
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
        let checks = RedisDeliveryChecks(probeTimeout: .milliseconds(500))
        try await RedisBrokerTests.withRedisBehindProxy { redis, proxy, viaProxy in
            try await RedisBrokerTests.withTwoNodes(on: redis, checks: checks, pubsubA: viaProxy) { a, b, brokerA, _ in
                let (alice, bob, _) = try await RedisBrokerTests.aliceAndBob(a, b)
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
        }
    }

    @Test("run() probes an idle pub/sub connection every probeInterval on the broker's clock: a wedged one is re-established")
    func probeRunsOnTheClock() async throws {
        let clock = TestClock()
        // No audit within the test: its probe would find the wedge too.
        let checks = RedisDeliveryChecks(probeTimeout: .milliseconds(500), auditInterval: .seconds(1_000_000_000))
        try await RedisBrokerTests.withRedisBehindProxy { redis, proxy, viaProxy in
            try await RedisBrokerTests.withTwoNodes(on: redis, checks: checks, pubsubA: viaProxy, clock: clock) { a, b, brokerA, _ in
                let (alice, bob, _) = try await RedisBrokerTests.aliceAndBob(a, b)
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
        }
    }

    @Test("an event lost on pub/sub with no later event to reveal it: the audit delivers it from history, in order, once")
    func auditFindsALostEvent() async throws {
        try await RedisBrokerTests.withTwoNodes { a, b, brokerA, brokerB in
            let (alice, bob, _) = try await RedisBrokerTests.aliceAndBob(a, b)
            let first = try await ResumeTests.send(bob, "lobby", "1")
            _ = try await Resume.events(alice, room: "lobby", through: first)
            #expect(try await brokerA.audit() == [], "nothing lost: nothing to do")
            let lost = try await Self.publishLost(brokerB, room: "lobby", content: "lost")
            #expect(lost.epoch == first.epoch && lost.offset == first.offset + 1)
            #expect(try await brokerA.audit() == ["lobby"])
            let found = try await Resume.events(alice, room: "lobby", through: lost)
            #expect(Self.contents(found) == ["lost"])
            ResumeTests.expectConsecutive(found, after: first)
            #expect(try await brokerA.audit() == [], "caught up: the next audit finds nothing")
            let next = try await ResumeTests.send(bob, "lobby", "2")
            let after = try await Resume.events(alice, room: "lobby", through: next)
            #expect(Self.contents(after) == ["2"])
            ResumeTests.expectConsecutive(after, after: lost)
            for client in [alice, bob] { await client.close() }
        }
    }

    @Test("events published during an audit are delivered once, whether the audit or pub/sub brings them")
    func auditDuringTraffic() async throws {
        try await RedisBrokerTests.withTwoNodes { a, b, brokerA, _ in
            let (alice, bob, start) = try await RedisBrokerTests.aliceAndBob(a, b)
            async let audits: [[String]] = (1...20).asyncMap { _ in try await brokerA.audit() }
            let positions = try await (1...40).asyncMap { try await ResumeTests.send(bob, "lobby", "\($0)") }
            #expect(try await audits.allSatisfy(\.isEmpty), "nothing was lost: events in flight are not taken for lost ones")
            let events = try await Resume.events(alice, room: "lobby", through: positions[39])
            #expect(Self.contents(events) == (1...40).map(String.init))
            ResumeTests.expectConsecutive(events, after: start)
            for client in [alice, bob] { await client.close() }
        }
    }

    @Test("the room's keys were lost and its new epoch has an event this node never saw: the audit resynchronizes the room (1013)")
    func auditResynchronizesANewEpoch() async throws {
        let redis = try await RedisServer.start()
        try await RedisBrokerTests.withTwoNodes(on: redis) { a, b, brokerA, brokerB in
            let (alice, bob, _) = try await RedisBrokerTests.aliceAndBob(a, b)
            let first = try await ResumeTests.send(bob, "lobby", "1")
            _ = try await Resume.events(alice, room: "lobby", through: first)
            _ = try await brokerB.client.send("FLUSHALL")
            let lost = try await Self.publishLost(brokerB, room: "lobby", content: "lost")
            #expect(lost.epoch != first.epoch)
            #expect(try await brokerA.audit() == ["lobby"])
            #expect(try await alice.expectClose().code == 1013)
            #expect(try await brokerA.audit() == [], "resynchronized once, not at every audit")
            await bob.close()
        }
        await redis.stop()
    }

    @Test("run() audits every auditInterval on the broker's clock")
    func auditRunsOnTheClock() async throws {
        let clock = TestClock()
        try await RedisBrokerTests.withTwoNodes(clock: clock) { a, b, _, brokerB in
            let (alice, bob, _) = try await RedisBrokerTests.aliceAndBob(a, b)
            let first = try await ResumeTests.send(bob, "lobby", "1")
            _ = try await Resume.events(alice, room: "lobby", through: first)
            let lost = try await Self.publishLost(brokerB, room: "lobby", content: "lost")
            clock.advance(by: RedisDeliveryChecks().auditInterval)
            let found = try await Resume.events(alice, room: "lobby", through: lost)
            #expect(Self.contents(found) == ["lost"])
            for client in [alice, bob] { await client.close() }
        }
    }

    @Test("delivery checks with an interval or a timeout that is not positive, or a negative catch-up patience, are refused")
    func invalidChecks() async throws {
        let redis = RedisConfiguration(port: 1)
        #expect(throws: RedisError.self) {
            _ = try RedisBroker(configuration: redis, checks: RedisDeliveryChecks(probeTimeout: .zero), clock: TestClock())
        }
        #expect(throws: RedisError.self) {
            _ = try RedisBroker(configuration: redis, checks: RedisDeliveryChecks(auditInterval: .seconds(-1)), clock: TestClock())
        }
        #expect(throws: RedisError.self) {
            _ = try RedisBroker(configuration: redis, checks: RedisDeliveryChecks(catchUpPatience: .seconds(-1)), clock: TestClock())
        }
    }
}
