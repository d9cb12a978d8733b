import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import Switchboard
@testable import SwitchboardRedis

/// Presence, connection slots and idempotency shared by nodes on one real redis-server: each
/// store stands for one node; a node that "dies" simply stops refreshing and never cleans up.
@Suite("Redis stores: presence, connection limit and idempotency across nodes", RedisServer.availability)
struct RedisStoresTests {
    /// Runs `body` with a running command pool on a private redis-server and a key prefix.
    static func withRedis(_ body: @Sendable (RedisClient, String) async throws -> Void) async throws {
        let redis = try await RedisServer.start()
        let client = try RedisClient(configuration: redis.configuration)
        let running = Task { try await client.run() }
        let prefix = "t\(UUID().uuidString.prefix(8)):"
        do {
            try await client.waitUntilConnected(timeout: .seconds(10))
            try await body(client, prefix)
        } catch {
            running.cancel()
            _ = await running.result
            await redis.stop()
            throw error
        }
        running.cancel()
        _ = await running.result
        await redis.stop()
    }

    /// What a store told the rooms layer.
    final class PresenceLog: PresenceObserver {
        let entries = NIOLockedValueBox<[String]>([])
        func presenceExpired(_ users: [String], in room: String) {
            entries.withLockedValue { $0 += users.map { "leave \(room) \($0)" } }
        }
        func presenceRestored(_ users: [String], in room: String) {
            entries.withLockedValue { $0 += users.map { "join \(room) \($0)" } }
        }
        var all: [String] { entries.withLockedValue { $0 } }
    }

    static let loop: any EventLoop = MultiThreadedEventLoopGroup.singleton.any()

    static func presence(_ client: RedisClient, _ prefix: String, _ clock: TestClock, _ log: PresenceLog = PresenceLog()) -> RedisPresenceStore {
        let store = RedisPresenceStore(client: client, keyPrefix: prefix, entryTTL: .seconds(30), clock: clock)
        store.observe(log)
        return store
    }

    @Test("a user on two nodes is one member: first when its first node has it, last when its last node no longer does")
    func presenceCountsUsersOnceOverNodes() async throws {
        try await Self.withRedis { client, prefix in
            let clock = TestClock()
            let a = Self.presence(client, prefix, clock)
            let b = Self.presence(client, prefix, clock)
            let first = try await a.add("alice", to: "lobby", on: Self.loop).get()
            #expect(first == true)
            #expect(try await a.add("alice", to: "lobby", on: Self.loop).get() == false, "a second tab on the same node")
            #expect(try await b.add("alice", to: "lobby", on: Self.loop).get() == false, "a tab on another node")
            #expect(try await b.add("bob", to: "lobby", on: Self.loop).get() == true)
            #expect(try await a.members(of: "lobby", on: Self.loop).get() == ["alice", "bob"])
            #expect(try await a.remove("alice", from: "lobby", on: Self.loop).get() == false)
            #expect(try await a.remove("alice", from: "lobby", on: Self.loop).get() == false, "node B still has alice")
            #expect(try await b.remove("alice", from: "lobby", on: Self.loop).get() == true)
            #expect(try await b.members(of: "lobby", on: Self.loop).get() == ["bob"])
            #expect(try await a.members(of: "other", on: Self.loop).get() == [])
        }
    }

    @Test("a dead node's presence expires within the entry TTL, and the node that finds it reports the leave once")
    func deadNodePresenceExpires() async throws {
        try await Self.withRedis { client, prefix in
            let clock = TestClock()
            let dead = Self.presence(client, prefix, clock)
            let log = PresenceLog()
            let live = Self.presence(client, prefix, clock, log)
            #expect(try await dead.add("carol", to: "lobby", on: Self.loop).get() == true)
            #expect(try await live.add("bob", to: "lobby", on: Self.loop).get() == true)
            clock.advance(by: .seconds(20))
            try await live.refresh()
            #expect(try await live.members(of: "lobby", on: Self.loop).get() == ["bob", "carol"], "not expired yet")
            #expect(log.all.isEmpty)
            clock.advance(by: .seconds(11))
            // carol's entry is 31 s old; bob's was refreshed 11 s ago.
            #expect(try await live.members(of: "lobby", on: Self.loop).get() == ["bob"])
            #expect(log.all == ["leave lobby carol"])
            #expect(try await live.members(of: "lobby", on: Self.loop).get() == ["bob"])
            #expect(log.all == ["leave lobby carol"], "reported once")
        }
    }

    @Test("a node that could not refresh in time puts its entries back at the next refresh and reports them again")
    func lapsedEntriesAreRestored() async throws {
        try await Self.withRedis { client, prefix in
            let clock = TestClock()
            let lapsedLog = PresenceLog()
            let lapsed = Self.presence(client, prefix, clock, lapsedLog)
            let otherLog = PresenceLog()
            let other = Self.presence(client, prefix, clock, otherLog)
            #expect(try await lapsed.add("bob", to: "lobby", on: Self.loop).get() == true)
            clock.advance(by: .seconds(31))
            #expect(try await other.members(of: "lobby", on: Self.loop).get() == [])
            #expect(otherLog.all == ["leave lobby bob"])
            try await lapsed.refresh()
            #expect(lapsedLog.all == ["join lobby bob"])
            #expect(try await other.members(of: "lobby", on: Self.loop).get() == ["bob"])
            // bob's last connection leaving is the last of him everywhere.
            #expect(try await lapsed.remove("bob", from: "lobby", on: Self.loop).get() == true)
        }
    }

    @Test("the per-user connection limit holds over nodes, and a dead node's slots expire within the slot TTL")
    func connectionSlotsAcrossNodes() async throws {
        try await Self.withRedis { client, prefix in
            let clock = TestClock()
            let a = RedisConnectionSlotStore(client: client, keyPrefix: prefix, slotTTL: .seconds(30), clock: clock)
            let b = RedisConnectionSlotStore(client: client, keyPrefix: prefix, slotTTL: .seconds(30), clock: clock)
            let first = try #require(try await a.acquire("alice", limit: 2))
            #expect(try await b.acquire("alice", limit: 2) != nil)
            #expect(try await a.acquire("alice", limit: 2) == nil, "two held, one on each node")
            #expect(try await b.acquire("bob", limit: 2) != nil, "another user is not affected")
            a.release(first)
            try await waitUntil("node A's slot given back") { try await b.count(of: "alice") == 1 }
            // Node A takes a slot again and then dies with it; node B keeps refreshing its own.
            #expect(try await a.acquire("alice", limit: 2) != nil)
            #expect(try await b.acquire("alice", limit: 2) == nil)
            clock.advance(by: .seconds(20))
            try await b.refresh()
            clock.advance(by: .seconds(11))
            #expect(try await b.count(of: "alice") == 1, "the dead node's slot expired, B's was refreshed")
            #expect(try await b.acquire("alice", limit: 2) != nil)
        }
    }

    @Test("a node whose slot store stops (a shutdown) gives back every slot it held or was giving back: its users connect on the other nodes at once, not after the slot TTL")
    func shutdownGivesSlotsBack() async throws {
        try await Self.withRedis { client, prefix in
            let clock = TestClock()
            let a = RedisConnectionSlotStore(client: client, keyPrefix: prefix, slotTTL: .seconds(30), clock: clock)
            let b = RedisConnectionSlotStore(client: client, keyPrefix: prefix, slotTTL: .seconds(30), clock: clock)
            _ = try #require(try await a.acquire("alice", limit: 3))
            let second = try #require(try await a.acquire("alice", limit: 3))
            _ = try #require(try await a.acquire("bob", limit: 3))
            #expect(try await b.count(of: "alice") == 2)
            // One connection ends as the node stops: its slot's removal may still be on its way.
            a.release(second)
            let running = Task { try await a.run() }
            running.cancel()
            try await withTimeout(.seconds(10), "the slot store's run() to return") { try await running.value }
            // Nothing expired (the clock did not move): the slots were removed.
            #expect(try await b.count(of: "alice") == 0)
            #expect(try await b.count(of: "bob") == 0)
            #expect(try await b.acquire("alice", limit: 1) != nil)
        }
    }

    @Test("a message id claimed on one node: a retry on another waits for its reply, gets it byte for byte, and a different message with it is a conflict")
    func idempotencyAcrossNodes() async throws {
        try await Self.withRedis { client, prefix in
            let a = RedisIdempotencyStore(client: client, keyPrefix: prefix)
            let b = RedisIdempotencyStore(client: client, keyPrefix: prefix)
            let key = IdempotencyKey(user: "alice", id: "m1")
            guard case .first = try await a.claim(key, fingerprint: 7, on: Self.loop).get() else {
                Issue.record("expected the first attempt")
                return
            }
            guard case .inProgress(let waiting) = try await b.claim(key, fingerprint: 7, on: Self.loop).get() else {
                Issue.record("expected the retry to wait for the first attempt")
                return
            }
            guard case .conflict = try await b.claim(key, fingerprint: 8, on: Self.loop).get() else {
                Issue.record("expected a conflict for another message")
                return
            }
            guard case .inProgress(let waitingHere) = try await a.claim(key, fingerprint: 7, on: Self.loop).get() else {
                Issue.record("expected a retry on the same node to wait too")
                return
            }
            let reply = ByteBuffer(string: "\u{81}\u{05}reply")
            a.complete(key, reply: reply, remember: true)
            #expect(try await waitingHere.get() == reply)
            #expect(try await waiting.get() == reply)
            guard case .replied(let again) = try await b.claim(key, fingerprint: 7, on: Self.loop).get() else {
                Issue.record("expected the stored reply")
                return
            }
            #expect(again == reply)
            // A reply not to be remembered frees the id: its retry is handled anew, on any node.
            let other = IdempotencyKey(user: "alice", id: "m2")
            guard case .first = try await a.claim(other, fingerprint: 1, on: Self.loop).get() else {
                Issue.record("expected the first attempt of m2")
                return
            }
            a.complete(other, reply: reply, remember: false)
            try await waitUntil("m2 is free again") {
                if case .first = try await b.claim(other, fingerprint: 1, on: Self.loop).get() { return true }
                return false
            }
        }
    }

    @Test("Redis gone: a claim and a presence join fail (the server answers unavailable), the limit is counted on the node alone")
    func redisGoneFailsTheStores() async throws {
        let redis = try await RedisServer.start()
        let client = try RedisClient(configuration: redis.configuration)
        let running = Task { try await client.run() }
        try await client.waitUntilConnected(timeout: .seconds(10))
        let slots = RedisConnectionSlotStore(client: client, clock: TestClock())
        let idempotency = RedisIdempotencyStore(client: client)
        let presence = RedisPresenceStore(client: client, clock: TestClock())
        await redis.stop()
        // The node goes on serving: the connection limit is counted here alone meanwhile.
        #expect(try await slots.acquire("alice", limit: 2) != nil)
        #expect(try await slots.acquire("alice", limit: 2) != nil)
        #expect(try await slots.acquire("alice", limit: 2) == nil)
        #expect(try await slots.count(of: "alice") == 2, "the count the handshake check uses agrees")
        await #expect(throws: (any Error).self) {
            _ = try await idempotency.claim(IdempotencyKey(user: "alice", id: "x"), fingerprint: 1, on: Self.loop).get()
        }
        await #expect(throws: (any Error).self) { _ = try await presence.add("alice", to: "lobby", on: Self.loop).get() }
        // The failed add is not counted here: the next one tries Redis again.
        await #expect(throws: (any Error).self) { _ = try await presence.add("alice", to: "lobby", on: Self.loop).get() }
        running.cancel()
        _ = await running.result
    }

    /// Two servers on one private redis-server, each with the broker and all three Redis stores.
    static func withTwoFullNodes(
        configuration: SwitchboardConfiguration = .init(),
        _ body: @Sendable (TestServer, TestServer) async throws -> Void
    ) async throws {
        let redis = try await RedisServer.start()
        let prefix = "t\(UUID().uuidString.prefix(8)):"
        do {
            try await RedisBrokerTests.withBroker(on: redis, prefix: prefix) { brokerA in
                try await RedisBrokerTests.withBroker(on: redis, prefix: prefix) { brokerB in
                    @Sendable func node(_ broker: RedisBroker, _ body: @Sendable (TestServer) async throws -> Void) async throws {
                        try await TestServers.with(
                            configuration: configuration, broker: broker,
                            presence: RedisPresenceStore(client: broker.client, keyPrefix: prefix),
                            idempotency: RedisIdempotencyStore(client: broker.client, keyPrefix: prefix),
                            connectionSlots: RedisConnectionSlotStore(client: broker.client, keyPrefix: prefix),
                            body)
                    }
                    try await node(brokerA) { a in
                        try await node(brokerB) { b in try await body(a, b) }
                    }
                }
            }
        } catch {
            await redis.stop()
            throw error
        }
        await redis.stop()
    }

    @Test("two nodes: presence is announced once per user across nodes, the connection limit counts both, a retry on the other node runs once")
    func nodesShareTheStores() async throws {
        var configuration = SwitchboardConfiguration()
        configuration.maxConnectionsPerUser = 2
        configuration.presenceGracePeriod = .zero
        try await Self.withTwoFullNodes(configuration: configuration) { a, b in
            let bob = try await a.open("bob")
            _ = try await RoomTests.join(bob, "lobby")
            let alice = try await a.open("alice")
            _ = try await RoomTests.join(alice, "lobby")
            #expect(try await bob.next(event: "presence.join")["data"]?["user"]?.stringValue == "alice")
            // alice's second tab, on the other node, is not news; carol is.
            let aliceOnB = try await b.open("alice")
            _ = try await RoomTests.join(aliceOnB, "lobby")
            let carol = try await b.open("carol")
            _ = try await RoomTests.join(carol, "lobby")
            #expect(try await bob.next(event: "presence.join")["data"]?["user"]?.stringValue == "carol")
            let members = try await RoomTests.request(aliceOnB, "room.members", #"{"room":"lobby"}"#)
            #expect(members["data"]?["members"]?.arrayValue?.compactMap(\.stringValue) == ["alice", "bob", "carol"], "\(members)")

            // alice holds two connections, one on each node: a third is refused on either.
            let token = try await a.token("alice")
            for node in [a, b] {
                guard case .rejected(let response) = try await TestWebSocketClient.connect(port: node.port, path: "/ws?token=\(token)") else {
                    Issue.record("expected 429, got an upgrade")
                    continue
                }
                #expect(response.status == 429)
                #expect(response.body.contains("too_many_connections"))
            }

            // A message sent on node A and retried on node B runs once and gets the same ack.
            let first = try await RoomTests.request(alice, "message.send", #"{"room":"lobby","content":"once"}"#, id: "send-1")
            let retry = try await RoomTests.request(aliceOnB, "message.send", #"{"room":"lobby","content":"once"}"#, id: "send-1")
            #expect(first["event"]?.stringValue == "ack", "\(first)")
            #expect(retry["data"]?["eid"] == first["data"]?["eid"], "\(retry)")
            let conflict = try await RoomTests.request(aliceOnB, "message.send", #"{"room":"lobby","content":"other"}"#, id: "send-1")
            #expect(conflict["data"]?["code"]?.stringValue == "idempotency_conflict", "\(conflict)")
            let marker = try await ResumeTests.send(carol, "lobby", "marker")
            let seen = try await Resume.events(bob, room: "lobby", through: marker)
            #expect(ResumeTests.contents(seen) == ["once", "marker"])

            // alice's leave is announced once, when her last connection (on either node) is gone.
            await alice.close()
            await carol.close()
            #expect(try await bob.next(event: "presence.leave")["data"]?["user"]?.stringValue == "carol")
            await aliceOnB.close()
            #expect(try await bob.next(event: "presence.leave")["data"]?["user"]?.stringValue == "alice")
            await bob.close()
        }
    }
}
