import Foundation
import NIOCore
import Testing
@testable import Switchboard
@testable import SwitchboardClient

/// `SwitchboardClient` against the real server on 127.0.0.1 ephemeral ports: fault injection
/// (a proxy that cuts mid-frame, the server aborting the socket, a server restarted with a new
/// epoch, a connection that goes silent), the offline queue, token refresh and refusal. Every
/// check is on what the app sees: each room event once, in order.
@Suite("Swift client against the server", .serialized)
struct ClientTests {
    static func join(_ client: TestWebSocketClient, _ room: String) async throws {
        _ = try await RoomTests.join(client, room)
    }

    static func post(_ client: TestWebSocketClient, _ room: String, _ content: String) async throws {
        _ = try await ResumeTests.send(client, room, content)
    }

    @Test("exactly once, in order, across proxy cuts mid-frame (FIN and RST) while both sides keep publishing", arguments: [false, true])
    func exactlyOnceAcrossProxyCuts(reset: Bool) async throws {
        let registry = SocketRegistry()
        try await TestServers.with(authorizeJoin: registry.authorizer) { server in
            let proxy = try await ChaosProxy.start(upstreamPort: server.port, reset: reset)
            defer { Task { await proxy.stop() } }
            let bob = try await server.open("bob")
            try await Self.join(bob, "lobby")
            let carol = try await server.open("carol")
            try await Self.join(carol, "lobby")
            var configuration = ClientTesting.fast
            configuration.ackTimeout = .seconds(30)
            let client = SwitchboardClient(url: "ws://127.0.0.1:\(proxy.port)/ws", token: .fixed(try await ClientTesting.token("alice")), configuration: configuration)
            let alice = CollectedEvents(client)
            let joined = try await client.join("lobby")
            #expect(joined.members.sorted() == ["alice", "bob", "carol"])
            try await alice.waitForOpens(1)

            // From now on every connection is cut after 1000 bytes from the server: inside the
            // hello ack, a replayed event or an ack, wherever that falls.
            proxy.cutConnections(afterServerBytes: 1000)
            try await registry.abort("alice", reset: reset)
            let bobs = (0..<40).map { "b\($0)" }
            let alices = (0..<12).map { "a\($0)" }
            let acked = TestLockedBox<[String: EventPosition]>([:])
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for batch in 0..<4 {
                        for index in (batch * 10)..<(batch * 10 + 10) { try await Self.post(bob, "lobby", bobs[index]) }
                        // Keep publishing while alice is still catching up.
                        try await alice.waitFor("alice has half of batch \(batch)", timeout: .seconds(30)) { $0.contents.count >= batch * 10 + 5 }
                    }
                }
                group.addTask {
                    for content in alices {
                        let posted = try await client.send("message.send", ClientChatPost(room: "lobby", content: content), as: ClientChatPosted.self)
                        let eid = try #require(EventPosition(posted.eid))
                        acked.withLock { $0[content] = eid }
                    }
                }
                try await group.waitForAll()
            }
            proxy.cutConnections(afterServerBytes: nil)
            try await alice.waitForContents(Set(bobs), timeout: .seconds(30))

            #expect(alice.contents.filter { $0.hasPrefix("b") } == bobs, "\(alice.contents)")
            #expect(ClientTesting.strictlyIncreasing(alice.messages))
            // Alice's own events reach her only in a replay, when the ack of their send was lost
            // (protocol 2.5): once each, flagged replayed, with the eid her resent send was acked with.
            let own = alice.messages.filter { (try? $0.decode(ClientChatMessage.self).from) == "alice" }
            let acks = acked.withLock { $0 }
            #expect(acks.count == alices.count)
            for event in own {
                let content = try #require(try? event.decode(ClientChatMessage.self).content)
                #expect(event.replayed, "\(event)")
                #expect(event.eid == acks[content], "\(event) acked as \(acks[content].map { "\($0)" } ?? "-")")
            }
            #expect(Set(own.map(\.eid)).count == own.count)
            #expect(alice.messages.contains { $0.replayed })
            #expect(alice.reconnectReasons.count >= 3, "\(alice.reconnectReasons)")
            #expect(proxy.accepted >= 4)
            // Carol saw each of alice's messages once, in order, though many of their acks were lost
            // and they were sent again.
            try await Self.post(bob, "lobby", "marker")
            let seen = try await ClientTesting.contents(carol, through: "marker")
            #expect(seen.filter { $0.hasPrefix("a") } == alices, "\(seen)")
            #expect(seen.filter { $0.hasPrefix("b") } == bobs)
            await client.close()
            await bob.close()
            await carol.close()
        }
    }

    @Test("the server aborting the socket (FIN, then RST) mid-stream loses nothing and repeats nothing")
    func serverAbortsTheSocket() async throws {
        let registry = SocketRegistry()
        try await TestServers.with(authorizeJoin: registry.authorizer) { server in
            let bob = try await server.open("bob")
            try await Self.join(bob, "lobby")
            let client = SwitchboardClient(url: "ws://127.0.0.1:\(server.port)/ws", token: .fixed(try await ClientTesting.token("alice")), configuration: ClientTesting.fast)
            let alice = CollectedEvents(client)
            try await client.join("lobby")
            var expected: [String] = []
            for round in 0..<4 {
                let batch = (0..<8).map { "r\(round)-\($0)" }
                for content in batch { try await Self.post(bob, "lobby", content) }
                expected += batch
                try await alice.waitForContents(Set(expected))
                let opens = alice.opens
                try await registry.abort("alice", reset: round % 2 == 1)
                // Published while alice is away: replayed on resume.
                try await alice.waitFor("alice reconnecting") { $0.reconnectReasons.count > round }
                try await Self.post(bob, "lobby", "away-\(round)")
                expected.append("away-\(round)")
                try await alice.waitForOpens(opens + 1)
            }
            try await alice.waitForContents(Set(expected))
            #expect(alice.contents == expected)
            #expect(ClientTesting.strictlyIncreasing(alice.messages))
            #expect(alice.messages.filter(\.replayed).map { try? $0.decode(ClientChatMessage.self).content }.contains("away-0"))
            #expect(alice.refreshes.isEmpty)
            await client.close()
            await bob.close()
        }
    }

    @Test("a server restarted with a new epoch: the client gets a refresh for the room, then the new epoch's events")
    func newEpochIsARefresh() async throws {
        let proxyBox = TestLockedBox<ChaosProxy?>(nil)
        let clientBox = TestLockedBox<(SwitchboardClient, CollectedEvents)?>(nil)
        let oldEpoch = TestLockedBox<String?>(nil)
        try await TestServers.with { first in
            let proxy = try await ChaosProxy.start(upstreamPort: first.port, reset: false)
            proxyBox.withLock { $0 = proxy }
            let bob = try await first.open("bob")
            try await Self.join(bob, "lobby")
            let client = SwitchboardClient(
                url: "ws://127.0.0.1:\(proxy.port)/ws", token: .provider { try await ClientTesting.token("alice") }, configuration: ClientTesting.fast)
            let alice = CollectedEvents(client)
            clientBox.withLock { $0 = (client, alice) }
            try await client.join("lobby")
            try await Self.post(bob, "lobby", "before")
            try await alice.waitForContents(["before"])
            oldEpoch.withLock { $0 = alice.messages.first?.eid?.epoch }
            await bob.close()
        }
        let proxy = try #require(proxyBox.withLock { $0 })
        let (client, alice) = try #require(clientBox.withLock { $0 })
        let old = try #require(oldEpoch.withLock { $0 })
        try await TestServers.with { second in
            proxy.retarget(upstreamPort: second.port)
            try await alice.waitFor("a refresh of lobby") { $0.refreshes.contains { $0.room == "lobby" } }
            let refresh = try #require(alice.refreshes.first)
            let epoch = try #require(refresh.eid?.epoch)
            #expect(epoch != old)
            #expect(await client.position(of: "lobby")?.epoch == epoch)
            let bob = try await second.open("bob")
            try await Self.join(bob, "lobby")
            try await Self.post(bob, "lobby", "after")
            try await alice.waitForContents(["after"])
            #expect(alice.contents == ["before", "after"])
            #expect(alice.messages.last?.eid?.epoch == epoch)
            await client.close()
            await bob.close()
        }
        await proxy.stop()
    }

    @Test("a send made while offline is queued and delivered once after the reconnect, with its ack")
    func offlineQueueDeliversOnce() async throws {
        let registry = SocketRegistry()
        try await TestServers.with(authorizeJoin: registry.authorizer) { server in
            let proxy = try await ChaosProxy.start(upstreamPort: server.port, reset: false)
            defer { Task { await proxy.stop() } }
            let carol = try await server.open("carol")
            try await Self.join(carol, "lobby")
            let client = SwitchboardClient(url: "ws://127.0.0.1:\(proxy.port)/ws", token: .fixed(try await ClientTesting.token("alice")), configuration: ClientTesting.fast)
            let alice = CollectedEvents(client)
            try await client.join("lobby")
            // Offline: the current connection is dropped and no new one gets a byte through.
            proxy.cutConnections(afterServerBytes: 0)
            try await registry.abort("alice")
            try await alice.waitFor("alice offline") { !$0.reconnectReasons.isEmpty }
            async let posted = client.send("message.send", ClientChatPost(room: "lobby", content: "offline-1"), as: ClientChatPosted.self)
            #expect(await client.state != .open)
            proxy.cutConnections(afterServerBytes: nil)
            let ack = try await posted
            #expect(EventPosition(ack.eid) != nil)
            #expect(await client.position(of: "lobby") == EventPosition(ack.eid))
            try await client.send("message.send", ClientChatPost(room: "lobby", content: "after"), as: ClientChatPosted.self)
            #expect(try await ClientTesting.contents(carol, through: "after") == ["offline-1", "after"])
            await client.close()
            await carol.close()
        }
    }

    @Test("a full offline queue gives up its oldest request with queue_full")
    func offlineQueueBound() async throws {
        var configuration = ClientTesting.fast
        configuration.offlineQueueLimit = 2
        // A port nobody listens on: the client stays offline.
        let client = SwitchboardClient(url: "ws://127.0.0.1:1/ws", token: .fixed("unused"), configuration: configuration)
        var requests: [Task<RawJSON, any Error>] = []
        for index in 0..<3 {
            requests.append(Task { try await client.send("message.send", json: RawJSON(#"{"room":"lobby","content":"\#(index)"}"#)) })
            try await waitUntil("request \(index) queued") { await client.waitingRequests == min(index + 1, 2) }
        }
        let first = await requests[0].result
        #expect(throws: SwitchboardClientError(code: SwitchboardClientError.queueFull, message: "the offline queue is full (2); oldest request given up")) { try first.get() }
        await client.close()
        for request in requests.dropFirst() {
            let result = await request.result
            #expect((try? result.get()) == nil)
            if case .failure(let error as SwitchboardClientError) = result { #expect(error.code == SwitchboardClientError.closed) }
        }
    }

    @Test("4001 (token expired): a new token from the provider and a reconnect at once, resuming the room")
    func tokenRefreshOn4001() async throws {
        let registry = SocketRegistry()
        try await TestServers.with(authorizeJoin: registry.authorizer) { server in
            let calls = TestLockedBox(0)
            let bob = try await server.open("bob")
            try await Self.join(bob, "lobby")
            let client = SwitchboardClient(
                url: "ws://127.0.0.1:\(server.port)/ws",
                token: .provider {
                    calls.withLock { $0 += 1 }
                    return try await ClientTesting.token("alice")
                },
                configuration: ClientTesting.fast)
            let alice = CollectedEvents(client)
            try await client.join("lobby")
            #expect(calls.withLock { $0 } == 1)
            let socket = try #require(registry.socket(of: "alice"))
            socket.close(code: 4001, reason: "token expired")
            try await Self.post(bob, "lobby", "during-refresh")
            try await alice.waitForOpens(2)
            #expect(calls.withLock { $0 } == 2)
            let reconnect = try #require(alice.states.first { if case .reconnecting = $0 { return true } else { return false } })
            #expect(reconnect == .reconnecting(attempt: 1, delay: .milliseconds(10), reason: .closed(code: 4001, reason: "token expired")))
            try await alice.waitForContents(["during-refresh"])
            #expect(alice.contents == ["during-refresh"])
            await client.close()
            await bob.close()
        }
    }

    @Test("a refused token is reported with its status, code and message, and the client stops (after one refresh)")
    func refusedTokenIsReported() async throws {
        try await TestServers.with { server in
            let fixed = SwitchboardClient(url: "ws://127.0.0.1:\(server.port)/ws", token: .fixed("not-a-jwt"), configuration: ClientTesting.fast)
            let events = CollectedEvents(fixed)
            try await events.waitFor("closed") { $0.isFinished }
            guard case .closed(.refused(let status, let code, _)) = try #require(events.states.last) else {
                Issue.record("\(events.states)")
                return
            }
            #expect(status == 401)
            #expect(code == "invalid_token")
            #expect(await fixed.state == events.states.last)
            await #expect(throws: SwitchboardClientError.self) { try await fixed.join("lobby") }

            let calls = TestLockedBox(0)
            let expired = SwitchboardClient(
                url: "ws://127.0.0.1:\(server.port)/ws",
                token: .provider {
                    calls.withLock { $0 += 1 }
                    return try await TokenMinter(hs256Secret: TestServer.secret).mint(subject: "alice", ttl: .seconds(-60))
                },
                configuration: ClientTesting.fast)
            let expiredEvents = CollectedEvents(expired)
            try await expiredEvents.waitFor("closed") { $0.isFinished }
            #expect(calls.withLock { $0 } == 2)
            guard case .closed(.refused(401, "token_expired", _)) = try #require(expiredEvents.states.last) else {
                Issue.record("\(expiredEvents.states)")
                return
            }
            await expired.close()
            await fixed.close()
        }
    }

    @Test("a token provider that throws stops the client with a clear state")
    func failingTokenProvider() async throws {
        struct NoToken: Error {}
        let client = SwitchboardClient(url: "ws://127.0.0.1:1/ws", token: .provider { throw NoToken() }, configuration: ClientTesting.fast)
        let events = CollectedEvents(client)
        try await events.waitFor("closed") { $0.isFinished }
        guard case .closed(.tokenUnavailable) = try #require(events.states.last) else {
            Issue.record("\(events.states)")
            return
        }
    }

    @Test("heartbeats keep a quiet connection open; one that goes silent is given up and resumed")
    func heartbeatTimeout() async throws {
        try await TestServers.with { server in
            let proxy = try await ChaosProxy.start(upstreamPort: server.port, reset: false)
            defer { Task { await proxy.stop() } }
            let bob = try await server.open("bob")
            try await Self.join(bob, "lobby")
            var configuration = ClientTesting.fast
            configuration.heartbeatInterval = .milliseconds(200)
            configuration.heartbeatTimeout = .seconds(2)
            // A hung handshake (the proxy swallows the 101) is given up after this.
            configuration.connectTimeout = .seconds(3)
            let client = SwitchboardClient(url: "ws://127.0.0.1:\(proxy.port)/ws", token: .fixed(try await ClientTesting.token("alice")), configuration: configuration)
            let alice = CollectedEvents(client)
            try await client.join("lobby")
            // Quiet for longer than the heartbeat timeout: the heartbeats' replies keep it open.
            let before = alice.reconnectReasons.count
            let quietUntil = ContinuousClock.now + .seconds(3)
            try await waitUntil("the quiet period", timeout: .seconds(10)) { ContinuousClock.now >= quietUntil }
            #expect(alice.reconnectReasons.count == before, "\(alice.states)")
            // Silent: nothing from the server gets through any more.
            proxy.pause(true)
            try await alice.waitFor("a heartbeat timeout") { $0.reconnectReasons.contains(.heartbeatTimeout) }
            try await Self.post(bob, "lobby", "while-silent")
            proxy.pause(false)
            try await alice.waitForOpens(2)
            try await alice.waitForContents(["while-silent"])
            #expect(alice.contents == ["while-silent"])
            await client.close()
            await bob.close()
        }
    }

    @Test("join, members, leave, and errors carrying the server's code and message")
    func requestsAndErrors() async throws {
        try await TestServers.with { server in
            let client = SwitchboardClient(url: "ws://127.0.0.1:\(server.port)/ws", token: .fixed(try await ClientTesting.token("alice")), configuration: ClientTesting.fast)
            let joined = try await client.join("lobby")
            #expect(joined.room == "lobby")
            #expect(joined.position != nil)
            #expect(await client.rooms == ["lobby"])
            #expect(try await client.members("lobby") == ["alice"])
            do {
                _ = try await client.send("message.send", ClientChatPost(room: "elsewhere", content: "x"), as: ClientChatPosted.self)
                Issue.record("expected forbidden")
            } catch let error as SwitchboardClientError {
                #expect(error.code == "forbidden")
                #expect(!error.message.isEmpty)
            }
            do {
                _ = try await client.send("message.send", ClientChatPost(room: "lobby", content: ""), as: ClientChatPosted.self)
                Issue.record("expected validation_failed")
            } catch let error as SwitchboardClientError {
                #expect(error.code == "validation_failed")
            }
            #expect(try await client.leave("lobby"))
            #expect(await client.rooms.isEmpty)
            #expect(try await client.leave("lobby") == false)
            await client.close()
            await #expect(throws: SwitchboardClientError(code: SwitchboardClientError.closed, message: "the client is closed")) {
                try await client.join("lobby")
            }
        }
    }

    @Test("a request without a reply fails with timeout after its ack timeout")
    func ackTimeout() async throws {
        try await TestServers.with { server in
            let proxy = try await ChaosProxy.start(upstreamPort: server.port, reset: false)
            defer { Task { await proxy.stop() } }
            let client = SwitchboardClient(url: "ws://127.0.0.1:\(proxy.port)/ws", token: .fixed(try await ClientTesting.token("alice")), configuration: ClientTesting.fast)
            try await client.join("lobby")
            proxy.pause(true)
            let started = ContinuousClock.now
            do {
                _ = try await client.members("lobby", timeout: .milliseconds(300))
                Issue.record("expected a timeout")
            } catch let error as SwitchboardClientError {
                #expect(error.code == SwitchboardClientError.timeout)
            }
            let waited = ContinuousClock.now - started
            #expect(waited >= .milliseconds(300) && waited < .seconds(3), "\(waited)")
            await client.close()
        }
    }
}

@Suite("Swift client: rate limits")
struct ClientRateLimitTests {
    @Test("a send refused with rate_limited is sent again after its retryAfter, with its id, and succeeds; one whose retry would come after its timeout fails with rate_limited")
    func honoursRetryAfter() async throws {
        var configuration = SwitchboardConfiguration()
        configuration.presence = false
        // One per second, a burst of 2: six sends at once get two acks and refusals for the rest
        // (at least three even if the machine spreads the sends over a second), each retried
        // after its retryAfter until its bucket has a token.
        configuration.rateLimits.events["message.send"] = RateLimit(perSecond: 1, burst: 2)
        try await TestServers.with(configuration: configuration) { server in
            var clientConfiguration = ClientTesting.fast
            clientConfiguration.ackTimeout = .seconds(30)
            let client = SwitchboardClient(url: "ws://127.0.0.1:\(server.port)/ws", token: .fixed(try await ClientTesting.token("alice")), configuration: clientConfiguration)
            _ = try await client.join("lobby")
            let eids = try await withThrowingTaskGroup(of: String.self) { group in
                for index in 0..<6 {
                    group.addTask {
                        let posted = try await client.send("message.send", ClientChatPost(room: "lobby", content: "m\(index)"), as: ClientChatPosted.self)
                        return posted.eid
                    }
                }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            #expect(Set(eids).count == 6, "each send published once: \(eids)")
            #expect(server.switchboard.rateLimitCounters.eventsLimited >= 3)
            await client.close()
        }
        // A refusal whose retry would fall after the request's timeout is the app's to see.
        var slow = SwitchboardConfiguration()
        slow.rateLimits.events["message.send"] = RateLimit(perSecond: 0.1, burst: 1)
        try await TestServers.with(configuration: slow) { server in
            let client = SwitchboardClient(url: "ws://127.0.0.1:\(server.port)/ws", token: .fixed(try await ClientTesting.token("bob")), configuration: ClientTesting.fast)
            _ = try await client.join("lobby")
            _ = try await client.send("message.send", ClientChatPost(room: "lobby", content: "first"), as: ClientChatPosted.self)
            do {
                _ = try await client.send("message.send", ClientChatPost(room: "lobby", content: "second"), as: ClientChatPosted.self, timeout: .seconds(2))
                Issue.record("a send 10 s from its next token succeeded within 2 s")
            } catch let error as SwitchboardClientError {
                #expect(error.code == "rate_limited", "\(error)")
            }
            await client.close()
        }
    }
}
