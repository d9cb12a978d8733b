import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import Switchboard
@testable import SwitchboardRedis

/// Several nodes on one real redis-server: what a client sees must not depend on which node it
/// is on.
@Suite("RedisBroker: nodes on one Redis", RedisServer.availability)
struct RedisBrokerTests {
    /// A broker on `redis` with keys of its own (tests share the server), running until `body`
    /// returns; its pub/sub connection goes to `pubsub` (a proxy) when given, its command pool to
    /// `pool`.
    static func withBroker<T: Sendable>(
        on redis: RedisServer,
        prefix: String,
        history: HistoryConfiguration = .init(),
        checks: RedisDeliveryChecks = .init(),
        pubsub: RedisConfiguration? = nil,
        pool: RedisConfiguration? = nil,
        clock: TestClock = TestClock(),
        _ body: @Sendable (RedisBroker) async throws -> T
    ) async throws -> T {
        let broker = try RedisBroker(
            configuration: pool ?? redis.configuration, pubsubConfiguration: pubsub ?? redis.configuration, history: history, keyPrefix: prefix,
            checks: checks, clock: clock)
        let running = Task { try await broker.run() }
        do {
            try await broker.waitUntilConnected(timeout: .seconds(10))
            let result = try await body(broker)
            running.cancel()
            _ = await running.result
            return result
        } catch {
            running.cancel()
            _ = await running.result
            throw error
        }
    }

    /// Two servers, each with its own broker on `redis` (by default a private redis-server: the
    /// client's tests kill the connections of the shared one), sharing a key prefix. Node A's
    /// pub/sub connection goes to `pubsubA` (a proxy) when given, its command pool to `poolA`.
    static func withTwoNodes(
        on redis: RedisServer? = nil,
        history: HistoryConfiguration = .init(),
        checks: RedisDeliveryChecks = .init(),
        pubsubA: RedisConfiguration? = nil,
        poolA: RedisConfiguration? = nil,
        clock: TestClock = TestClock(),
        configuration: SwitchboardConfiguration = Self.quiet,
        snapshot: RoomSnapshot = .none,
        _ body: @Sendable (TestServer, TestServer, RedisBroker, RedisBroker) async throws -> Void
    ) async throws {
        let server: RedisServer
        if let redis { server = redis } else { server = try await RedisServer.start() }
        let prefix = "t\(UUID().uuidString.prefix(8)):"
        do {
            try await withBroker(on: server, prefix: prefix, history: history, checks: checks, pubsub: pubsubA, pool: poolA, clock: clock) { brokerA in
                try await withBroker(on: server, prefix: prefix, history: history, checks: checks, clock: clock) { brokerB in
                    try await TestServers.with(configuration: configuration, broker: brokerA, snapshot: snapshot) { a in
                        try await TestServers.with(configuration: configuration, broker: brokerB, snapshot: snapshot) { b in
                            try await body(a, b, brokerA, brokerB)
                        }
                    }
                }
            }
        } catch {
            if redis == nil { await server.stop() }
            throw error
        }
        if redis == nil { await server.stop() }
    }

    /// Presence off: the tests read room events only.
    static var quiet: SwitchboardConfiguration {
        var configuration = SwitchboardConfiguration()
        configuration.presence = false
        return configuration
    }

    static func contents(_ events: [[String: JSONValue]]) -> [String] {
        events.compactMap { $0["data"]?["content"]?.stringValue }
    }

    @Test("an event published on one node reaches the room's members on every node once, in offset order, not its sender")
    func fanOutAcrossNodes() async throws {
        try await Self.withTwoNodes { a, b, _, _ in
            // Listeners on both nodes; bob (node B) and carol (node A) publish at the same time.
            let alice = try await a.open("alice")
            let dave = try await b.open("dave")
            let bob = try await b.open("bob")
            let carol = try await a.open("carol")
            let start = try await ResumeTests.joinPosition(alice, "lobby")
            for client in [dave, bob, carol] { _ = try await ResumeTests.joinPosition(client, "lobby") }
            async let fromBob: [EventID] = (1...20).asyncMap { try await ResumeTests.send(bob, "lobby", "b\($0)") }
            async let fromCarol: [EventID] = (1...20).asyncMap { try await ResumeTests.send(carol, "lobby", "c\($0)") }
            let positions = try await fromBob + fromCarol
            #expect(Set(positions).count == 40, "every publish has its own position")
            let last = try #require(positions.max { $0.offset < $1.offset })
            for listener in [alice, dave] {
                let events = try await Resume.events(listener, room: "lobby", through: last)
                ResumeTests.expectConsecutive(events, after: start)
                #expect(Self.contents(events).filter { $0.hasPrefix("b") } == (1...20).map { "b\($0)" })
                #expect(Self.contents(events).filter { $0.hasPrefix("c") } == (1...20).map { "c\($0)" })
            }
            // Bob's own event does not come back to him, though it goes through Redis to his node.
            _ = try await ResumeTests.send(bob, "lobby", "own")
            let after = try await ResumeTests.send(carol, "lobby", "after")
            #expect(Self.contents(try await Resume.events(bob, room: "lobby", through: after)) == ["after"])
            for client in [alice, dave, bob, carol] { await client.close() }
        }
    }

    @Test("a burst of message.sends from one connection, sent without waiting for acks, is published in the order sent, each acked with its position")
    func pipelinedBurstKeepsOrder() async throws {
        // 200 at once: past message.send's default rate limit, which is not what this checks.
        let configuration = {
            var configuration = Self.quiet
            configuration.rateLimits = .off
            return configuration
        }()
        try await Self.withTwoNodes(configuration: configuration) { a, b, _, _ in
            let (alice, bob, joined) = try await Self.aliceAndBob(a, b)
            let count = 200
            // Back to back: the node reads them together, and they are in flight at once.
            let burst = (1...count).map { #"{"event":"message.send","data":{"room":"lobby","content":"\#($0)"},"id":"m\#($0)"}"# }
            for message in burst { try await alice.sendText(message) }
            var acked: [EventID] = []
            while acked.count < count {
                let reply = try await alice.nextJSON(timeout: .seconds(10))
                guard reply["id"]?.stringValue?.hasPrefix("m") == true else { continue }
                #expect(reply["event"]?.stringValue == "ack" && reply["id"]?.stringValue == "m\(acked.count + 1)", "\(reply)")
                acked.append(try #require(reply["data"]?["eid"]?.stringValue.flatMap(EventID.init), "\(reply)"))
            }
            #expect(acked.map(\.offset) == (1...count).map { joined.offset + UInt64($0) }, "positions follow the order sent")
            let events = try await Resume.events(bob, room: "lobby", through: try #require(acked.last), timeout: .seconds(15))
            ResumeTests.expectConsecutive(events, after: joined)
            #expect(Self.contents(events) == (1...count).map(String.init))
            await alice.close()
            await bob.close()
        }
    }

    @Test("a client that drops on one node and resumes on the other gets exactly what it missed")
    func resumeOnAnotherNode() async throws {
        try await Self.withTwoNodes { a, b, _, _ in
            let bob = try await b.open("bob")
            _ = try await ResumeTests.joinPosition(bob, "lobby")
            let alice = try await a.open("alice")
            _ = try await ResumeTests.joinPosition(alice, "lobby")
            let seen = try await ResumeTests.send(bob, "lobby", "before")
            _ = try await Resume.events(alice, room: "lobby", through: seen)
            await alice.close()
            var missed: [EventID] = []
            for index in 1...5 { missed.append(try await ResumeTests.send(bob, "lobby", "missed \(index)")) }
            let resumed = try await b.openQuiet("alice")
            let ack = try await Resume.hello(resumed, ["lobby": seen.description])
            #expect(Resume.outcome(ack, "lobby")?["recovered"]?.boolValue == true, "\(ack)")
            let replay = try await Resume.events(resumed, room: "lobby", through: missed[4])
            #expect(Self.contents(replay) == (1...5).map { "missed \($0)" })
            ResumeTests.expectConsecutive(replay, after: seen)
            // Then live, from node A's publishers too.
            let carol = try await a.open("carol")
            _ = try await ResumeTests.joinPosition(carol, "lobby")
            let live = try await ResumeTests.send(carol, "lobby", "live")
            #expect(Self.contents(try await Resume.events(resumed, room: "lobby", through: live)) == ["live"])
            for client in [bob, resumed, carol] { await client.close() }
        }
    }

    @Test("three nodes: a client whose connections a proxy cuts at random points (mid-frame too) resumes on the next node each time, and ends with the exact sequence; a send retried on another node runs once")
    func resumeAcrossThreeNodesThroughACuttingProxy() async throws {
        let redis = try await RedisServer.start()
        let prefix = "t\(UUID().uuidString.prefix(8)):"
        do {
            // Each node with every store on Redis, as `serve --redis` has them.
            @Sendable func node(_ broker: RedisBroker, _ body: @Sendable (TestServer) async throws -> Void) async throws {
                try await TestServers.with(
                    configuration: Self.quiet, broker: broker,
                    idempotency: RedisIdempotencyStore(client: broker.client, keyPrefix: prefix),
                    connectionSlots: RedisConnectionSlotStore(client: broker.client, keyPrefix: prefix),
                    body)
            }
            try await Self.withBroker(on: redis, prefix: prefix) { brokerA in
                try await Self.withBroker(on: redis, prefix: prefix) { brokerB in
                    try await Self.withBroker(on: redis, prefix: prefix) { brokerC in
                        try await node(brokerA) { a in
                            try await node(brokerB) { b in
                                try await node(brokerC) { c in
                                    try await Self.resumeThroughProxy(nodes: [a, b, c])
                                }
                            }
                        }
                    }
                }
            }
        } catch {
            await redis.stop()
            throw error
        }
        await redis.stop()
    }

    /// Publishers on the first two nodes; alice reconnects through a cutting proxy to each node in
    /// turn, resuming from the last event she got.
    static func resumeThroughProxy(nodes: [TestServer]) async throws {
        let proxy = try await ChaosProxy.start(upstreamPort: nodes[0].port, reset: false)
        let publishers = try await [nodes[0].open("bob"), nodes[1].open("carol")]
        for publisher in publishers { _ = try await ResumeTests.joinPosition(publisher, "lobby") }
        let direct = try await nodes[2].open("alice")
        let start = try await ResumeTests.joinPosition(direct, "lobby")
        await direct.close()
        let stop = TestSignal()
        let sent = TestLockedBox([0, 0])
        let sending = Resume.publishing(publishers, room: "lobby", limit: 1000, stop: stop, sent: sent)
        let token = try await nodes[0].token("alice")
        var received: [[String: JSONValue]] = []
        var last = start
        var cuts = 0
        var attempts = 0
        while cuts < 6, attempts < 40 {
            attempts += 1
            proxy.retarget(upstreamPort: nodes[attempts % nodes.count].port)
            proxy.cutConnections(afterServerBytes: Int.random(in: 160...2400))
            do {
                let client = try await TestWebSocketClient.open(port: proxy.port, path: "/ws?token=\(token)")
                let ack = try await Resume.hello(client, ["lobby": last.description])
                #expect(Resume.outcome(ack, "lobby")?["recovered"] == .bool(true), "\(ack)")
                while true {
                    let event = try await client.nextJSON()
                    guard let eid = Resume.eid(event) else { continue }
                    received.append(event)
                    last = eid
                }
            } catch TestClientError.connectionClosed {
                cuts += 1
            } catch TestClientError.handshakeRejected(let response) where response.status == 429 {
                // The nodes have not all seen the last cut yet; a client would back off and retry.
                try await waitUntil("alice's slots to free up") { try await nodes[0].switchboard.connectionSlots.count(of: "alice") < 5 }
            }
        }
        #expect(cuts == 6, "cuts \(cuts) in \(attempts) attempts")
        stop.fire()
        try await sending.value
        proxy.cutConnections(afterServerBytes: nil)
        proxy.retarget(upstreamPort: nodes[2].port)
        let client = try await TestWebSocketClient.open(port: proxy.port, path: "/ws?token=\(token)")
        _ = try await Resume.hello(client, ["lobby": last.description])
        let final = try await nodes[2].switchboard.rooms.position(of: "lobby")
        if final.offset > last.offset {
            received += try await Resume.events(client, room: "lobby", through: final, timeout: .seconds(15))
        }
        ResumeTests.expectConsecutive(received, after: start)
        let contents = contents(received)
        let counts = sent.withLock { $0 }
        for index in 0..<2 {
            #expect(contents.filter { $0.hasPrefix("p\(index)-") } == (0..<counts[index]).map { "p\(index)-\($0)" })
        }
        // A send whose ack was lost, retried on another node with the same id, runs once.
        let retried = #"{"event":"message.send","data":{"room":"lobby","content":"retried"},"id":"r1"}"#
        try await client.sendText(retried)
        let firstAck = try await client.next(event: "r1", field: "id")
        await client.close()
        let again = try await nodes[1].openQuiet("alice")
        _ = try await ResumeTests.joinPosition(again, "lobby")
        try await again.sendText(retried)
        let secondAck = try await again.next(event: "r1", field: "id")
        #expect(secondAck == firstAck, "the retry gets the first attempt's reply")
        let marker = try await ResumeTests.send(publishers[0], "lobby", "marker")
        let tail = try await Resume.events(again, room: "lobby", through: marker)
        #expect(Self.contents(tail) == ["marker"], "the retry published nothing: \(Self.contents(tail))")
        await again.close()
        for publisher in publishers { await publisher.close() }
        await proxy.stop()
    }

    @Test("history is kept by each event's age on the nodes' clock: past retention a resume gets state.refresh")
    func retentionByAge() async throws {
        let clock = TestClock()
        var history = HistoryConfiguration()
        history.retention = .seconds(60)
        try await Self.withTwoNodes(history: history, clock: clock, snapshot: .latestEvents(10)) { a, b, brokerA, _ in
            let bob = try await b.open("bob")
            _ = try await ResumeTests.joinPosition(bob, "lobby")
            let first = try await ResumeTests.send(bob, "lobby", "old")
            let start = EventID(epoch: first.epoch, offset: first.offset - 1)
            clock.advance(by: .seconds(61))
            let second = try await ResumeTests.send(bob, "lobby", "new")
            // "old" is past retention: from before it, the replay cannot be complete.
            let early = try await a.openQuiet("alice")
            let ack = try await Resume.hello(early, ["lobby": start.description])
            #expect(Resume.outcome(ack, "lobby")?["recovered"]?.boolValue == false, "\(ack)")
            let refresh = try await early.next(event: "state.refresh")
            let snapshot = refresh["data"]?["events"]?.arrayValue?.compactMap { $0["data"]?["content"]?.stringValue }
            #expect(snapshot == ["new"], "\(refresh)")
            // From "old" on, it can.
            let late = try await a.openQuiet("alice")
            let lateAck = try await Resume.hello(late, ["lobby": first.description])
            #expect(Resume.outcome(lateAck, "lobby")?["recovered"]?.boolValue == true, "\(lateAck)")
            #expect(Self.contents(try await Resume.events(late, room: "lobby", through: second)) == ["new"])
            let latest = try await brokerA.latest("lobby", limit: 10, on: MultiThreadedEventLoopGroup.singleton.any()).get()
            #expect(latest.map(\.position) == [second])
            for client in [bob, early, late] { await client.close() }
        }
    }

    @Test("when Redis lost the room's keys, the room starts a new epoch and a resume gets state.refresh, never a silent gap")
    func lostKeysStartANewEpoch() async throws {
        let redis = try await RedisServer.start()
        try await Self.withTwoNodes(on: redis) { a, b, brokerA, _ in
            let bob = try await b.open("bob")
            _ = try await ResumeTests.joinPosition(bob, "lobby")
            let before = try await ResumeTests.send(bob, "lobby", "before the flush")
            _ = try await brokerA.client.send("FLUSHALL")
            let after = try await ResumeTests.send(bob, "lobby", "after the flush")
            #expect(after.epoch != before.epoch)
            #expect(after.offset == 1)
            let alice = try await a.openQuiet("alice")
            let ack = try await Resume.hello(alice, ["lobby": before.description])
            #expect(Resume.outcome(ack, "lobby")?["recovered"]?.boolValue == false, "\(ack)")
            #expect(Resume.outcome(ack, "lobby")?["eid"]?.stringValue == after.description)
            #expect(try await alice.next(event: "state.refresh")["eid"]?.stringValue == after.description)
            for client in [bob, alice] { await client.close() }
        }
        await redis.stop()
    }

    @Test("Redis gone: a publish or a join gets an error reply (unavailable), never a silent success")
    func redisGoneIsAnError() async throws {
        let redis = try await RedisServer.start()
        try await Self.withTwoNodes(on: redis) { a, _, brokerA, _ in
            let alice = try await a.open("alice")
            _ = try await ResumeTests.joinPosition(alice, "lobby")
            await redis.stop()
            let send = try await ResumeTests.request(alice, "message.send", #"{"room":"lobby","content":"lost?"}"#)
            #expect(send["event"]?.stringValue == "error", "\(send)")
            #expect(send["data"]?["code"]?.stringValue == "unavailable", "\(send)")
            let join = try await ResumeTests.request(alice, "room.join", #"{"room":"other"}"#)
            #expect(join["data"]?["code"]?.stringValue == "unavailable", "\(join)")
            // The failed join left no subscription behind for the next connection to make.
            let channel = brokerA.channel("other")
            try await waitUntil("the failed join's channel is no longer wanted") {
                try await !brokerA.pubsub.wantedChannels().contains(channel)
            }
            #expect(try await brokerA.pubsub.wantedChannels().contains(brokerA.channel("lobby")))
            await alice.close()
        }
    }

    @Test("events published while a node's pub/sub connection was down reach its members from history, in order, once")
    func pubsubReconnectCatchesUp() async throws {
        try await Self.withTwoNodes { a, b, brokerA, brokerB in
            let (alice, bob, start) = try await RedisBrokerTests.aliceAndBob(a, b)
            let first = try await ResumeTests.send(bob, "lobby", "1")
            _ = try await Resume.events(alice, room: "lobby", through: first)
            // Node A's pub/sub connection is cut; bob goes on publishing meanwhile.
            let reconnects = brokerA.pubsub.reconnectCount
            _ = try await brokerB.client.send("CLIENT", "KILL", "TYPE", "pubsub")
            var positions = [first]
            for index in 2...30 { positions.append(try await ResumeTests.send(bob, "lobby", "\(index)")) }
            try await waitUntil("node A's pub/sub connection is back", timeout: .seconds(10)) {
                brokerA.pubsub.reconnectCount > reconnects && brokerA.pubsub.isConnected
            }
            for index in 31...35 { positions.append(try await ResumeTests.send(bob, "lobby", "\(index)")) }
            let rest = try await Resume.events(alice, room: "lobby", through: positions[34])
            #expect(Self.contents(rest) == (2...35).map(String.init))
            ResumeTests.expectConsecutive(rest, after: first)
            #expect(start.offset == 0)
            for client in [alice, bob] { await client.close() }
        }
    }

    /// Two nodes; node A's command pool goes through a proxy. Node A's pool loses Redis, then its
    /// pub/sub connection drops and comes back (directly) while the pool is still down, so its
    /// catch-up cannot read history; bob (node B) publishes meanwhile. `body` gets alice (node A,
    /// in "lobby", has received event "1"), bob, event "1"'s position, and a closure that brings
    /// node A's pool back.
    static func withPubSubBackBeforeThePool(
        checks: RedisDeliveryChecks,
        _ body: @Sendable (TestWebSocketClient, TestWebSocketClient, EventID, @Sendable () -> Void) async throws -> Void
    ) async throws {
        try await Self.withRedisBehindProxy { redis, proxy, pool in
            let admin = try await RedisConnection.connect(configuration: redis.configuration)
            do {
                try await Self.withTwoNodes(on: redis, checks: checks, poolA: pool) { a, b, brokerA, brokerB in
                    let (alice, bob, _) = try await RedisBrokerTests.aliceAndBob(a, b)
                    let first = try await ResumeTests.send(bob, "lobby", "1")
                    _ = try await Resume.events(alice, room: "lobby", through: first)
                    // Node A's command pool loses Redis: its connections are killed, new ones lead nowhere.
                    proxy.retarget(upstreamPort: try RedisServer.freePort())
                    _ = try await admin.send("CLIENT", "KILL", "TYPE", "normal")
                    try await waitUntil("node A's pool is down") { !brokerA.client.isConnected }
                    try await waitUntil("node B's pool is back") { brokerB.client.openConnectionCount == brokerB.client.configuration.poolSize }
                    // Node A's pub/sub connection drops and comes back: its catch-up finds no pool.
                    let reconnects = brokerA.pubsub.reconnectCount
                    _ = try await admin.send("CLIENT", "KILL", "TYPE", "pubsub")
                    _ = try await ResumeTests.send(bob, "lobby", "2")
                    try await waitUntil("node A's pub/sub connection is back", timeout: .seconds(10)) {
                        brokerA.pubsub.reconnectCount > reconnects && brokerA.pubsub.isConnected
                    }
                    try await body(alice, bob, first) { proxy.retarget(upstreamPort: redis.port) }
                    for client in [alice, bob] { await client.close() }
                }
            } catch {
                await admin.close()
                throw error
            }
            await admin.close()
        }
    }

    /// alice on node `a` and bob on node `b`, both joined to "lobby"; with the position alice
    /// joined at.
    static func aliceAndBob(_ a: TestServer, _ b: TestServer) async throws -> (alice: TestWebSocketClient, bob: TestWebSocketClient, joined: EventID) {
        let alice = try await a.open("alice")
        let joined = try await ResumeTests.joinPosition(alice, "lobby")
        let bob = try await b.open("bob")
        _ = try await ResumeTests.joinPosition(bob, "lobby")
        return (alice, bob, joined)
    }

    /// A private redis-server with a ``ChaosProxy`` in front of it: `body` gets the server, the
    /// proxy, and the server's configuration through the proxy (for the node whose connections the
    /// test cuts or wedges). Both are stopped afterwards, whether `body` throws or not.
    static func withRedisBehindProxy(_ body: (RedisServer, ChaosProxy, RedisConfiguration) async throws -> Void) async throws {
        let redis = try await RedisServer.start()
        let proxy = try await ChaosProxy.start(upstreamPort: redis.port, reset: false)
        var viaProxy = redis.configuration
        viaProxy.port = proxy.port
        do {
            try await body(redis, proxy, viaProxy)
        } catch {
            await proxy.stop()
            await redis.stop()
            throw error
        }
        await proxy.stop()
        await redis.stop()
    }

    @Test("the pub/sub connection back before the command pool (as after Redis restarts): the catch-up waits for the pool rather than disconnecting the room's members, then delivers what was missed, in order, once")
    func catchUpWaitsForThePool() async throws {
        try await Self.withPubSubBackBeforeThePool(checks: RedisDeliveryChecks()) { alice, bob, first, bringPoolBack in
            // The pool comes back: alice gets what she missed and what came after, and stays connected.
            bringPoolBack()
            let third = try await ResumeTests.send(bob, "lobby", "3")
            let rest = try await Resume.events(alice, room: "lobby", through: third, timeout: .seconds(15))
            #expect(Self.contents(rest) == ["2", "3"])
            ResumeTests.expectConsecutive(rest, after: first)
        }
    }

    @Test("a catch-up that cannot read history within catchUpPatience closes the room's members with 1013: they resume, never a silent gap")
    func catchUpGivesUpAfterItsPatience() async throws {
        try await Self.withPubSubBackBeforeThePool(checks: RedisDeliveryChecks(catchUpPatience: .zero)) { alice, _, _, bringPoolBack in
            let close = try await alice.expectClose(timeout: .seconds(10))
            #expect(close.code == 1013, "\(close)")
            bringPoolBack()
        }
    }
}

extension ClosedRange where Bound == Int {
    /// Runs `body` for each element in order, one after the other.
    func asyncMap<T>(_ body: (Int) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await body(element)) }
        return results
    }
}
