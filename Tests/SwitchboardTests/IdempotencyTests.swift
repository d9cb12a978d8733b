import Foundation
import NIOCore
import NIOPosix
import Testing
@testable import Switchboard

/// Idempotent client sends: a retried id gets the first reply again, byte for byte, and the
/// handler runs once; a reused id with other data is a conflict.
@Suite("Idempotency: retries by message id")
struct IdempotencyTests {
    static func rawReply(_ client: TestWebSocketClient, id: String) async throws -> String {
        while true {
            let frame = try await client.nextMessage()
            let text = String(decoding: frame.payload, as: UTF8.self)
            if text.contains(#""id":"\#(id)""#) { return text }
        }
    }

    /// A router whose `count.up` handler counts its runs (and waits for `gate` when given).
    static func countingRouter(runs: TestLockedBox<Int>, started: TestSignal? = nil, gate: TestSignal? = nil) -> EventRouter {
        var router = EventRouter.chat
        router.on("count.up", as: EmptyPayload.self) { _, _ in
            let run = runs.withLock { count -> Int in
                count += 1
                return count
            }
            started?.fire()
            if let gate { try await gate.wait("the test to release the handler", timeout: .seconds(10)) }
            return ["run": run]
        }
        return router
    }

    @Test("a retried message.send gets the same ack and is delivered once, on the same connection and on another one")
    func retriedSendIsDeliveredOnce() async throws {
        try await TestServers.with { server in
            let bob = try await server.open("bob")
            _ = try await RoomTests.join(bob, "lobby")
            let alice = try await server.open("alice")
            _ = try await RoomTests.join(alice, "lobby")
            let send = #"{"event":"message.send","id":"k1","data":{"room":"lobby","content":"once"}}"#
            try await alice.sendText(send)
            let first = try await Self.rawReply(alice, id: "k1")
            try await alice.sendText(send)
            let again = try await Self.rawReply(alice, id: "k1")
            #expect(again == first)
            let other = try await server.open("alice")
            try await other.sendText(send)
            #expect(try await Self.rawReply(other, id: "k1") == first)
            // Bob got it once: the next thing he receives is a later message.
            _ = try await bob.next(event: "presence.join")
            let delivered = try await bob.next(event: "message.new")
            #expect(delivered["data"]?["content"]?.stringValue == "once")
            _ = try await ResumeTests.send(alice, "lobby", "next")
            #expect(try await bob.next(event: "message.new")["data"]?["content"]?.stringValue == "next")
            await other.close()
            await alice.close()
            await bob.close()
        }
    }

    @Test("a retry that arrives while the first attempt is running waits for its result; the handler runs once")
    func concurrentRetryWaits() async throws {
        let runs = TestLockedBox(0)
        let started = TestSignal()
        let gate = TestSignal()
        try await TestServers.with(router: Self.countingRouter(runs: runs, started: started, gate: gate)) { server in
            let first = try await server.open("alice")
            let second = try await server.open("alice")
            try await first.sendText(#"{"event":"count.up","id":"c1"}"#)
            try await started.wait("the first attempt to start")
            try await second.sendText(#"{"event":"count.up","id":"c1"}"#)
            // The second connection answers other messages meanwhile: only that id waits.
            try await second.sendText(#"{"event":"presence.heartbeat","id":"hb"}"#)
            #expect(try await second.next(event: "hb", field: "id")["event"]?.stringValue == "ack")
            gate.fire()
            let one = try await Self.rawReply(first, id: "c1")
            let two = try await Self.rawReply(second, id: "c1")
            #expect(one == two)
            #expect(one.contains(#""run":1"#))
            #expect(runs.withLock { $0 } == 1)
            await first.close()
            await second.close()
        }
    }

    @Test("the same id with other data is a conflict; another user's same id is their own; an error reply is not remembered")
    func conflictsAndScopes() async throws {
        try await TestServers.with { server in
            let alice = try await server.open("alice")
            _ = try await RoomTests.join(alice, "lobby")
            let ack = try await RoomTests.request(alice, "message.send", #"{"room":"lobby","content":"a"}"#, id: "same")
            #expect(ack["event"]?.stringValue == "ack")
            let conflict = try await RoomTests.request(alice, "message.send", #"{"room":"lobby","content":"b"}"#, id: "same")
            #expect(conflict["data"]?["code"]?.stringValue == "idempotency_conflict", "\(conflict)")
            let otherEvent = try await RoomTests.request(alice, "typing.start", #"{"room":"lobby"}"#, id: "same")
            #expect(otherEvent["data"]?["code"]?.stringValue == "idempotency_conflict")

            let bob = try await server.open("bob")
            _ = try await RoomTests.join(bob, "lobby")
            let bobs = try await RoomTests.request(bob, "message.send", #"{"room":"lobby","content":"b"}"#, id: "same")
            #expect(bobs["event"]?.stringValue == "ack")
            #expect(bobs["data"]?["eid"] != ack["data"]?["eid"])

            // Refused (not in the room yet), then allowed: the retry is handled anew.
            let refused = try await RoomTests.request(bob, "message.send", #"{"room":"elsewhere","content":"x"}"#, id: "later")
            #expect(refused["data"]?["code"]?.stringValue == "forbidden")
            _ = try await RoomTests.join(bob, "elsewhere")
            let allowed = try await RoomTests.request(bob, "message.send", #"{"room":"elsewhere","content":"x"}"#, id: "later")
            #expect(allowed["event"]?.stringValue == "ack", "\(allowed)")
            await alice.close()
            await bob.close()
        }
    }

    @Test("ids are remembered for the window only (injected clock)")
    func windowExpires() async throws {
        let clock = TestClock()
        let store = InMemoryIdempotencyStore(window: .seconds(600), clock: clock)
        let runs = TestLockedBox(0)
        try await TestServers.with(router: Self.countingRouter(runs: runs), idempotency: store) { server in
            let alice = try await server.open("alice")
            let first = try await RoomTests.request(alice, "count.up", "{}", id: "w1")
            clock.advance(by: .seconds(599))
            #expect(try await RoomTests.request(alice, "count.up", "{}", id: "w1") == first)
            clock.advance(by: .seconds(2))
            let later = try await RoomTests.request(alice, "count.up", "{}", id: "w1")
            #expect(later["data"]?["run"] == .number(2))
            #expect(runs.withLock { $0 } == 2)
            await alice.close()
        }
    }

    @Test("without its service, a store in use forgets idle users itself, a shard at a time")
    func sweepsWhileInUse() async throws {
        let eventLoop = MultiThreadedEventLoopGroup.singleton.any()
        let clock = TestClock()
        let store = InMemoryIdempotencyStore(window: .seconds(10), clock: clock)
        for index in 0..<50 {
            let key = IdempotencyKey(user: "idle\(index)", id: "x")
            _ = try await store.claim(key, fingerprint: 1, on: eventLoop).get()
            store.complete(key, reply: ByteBuffer(string: "r"), remember: true)
        }
        #expect(store.count == 50)
        clock.advance(by: .seconds(11))
        for index in 0..<64 {
            clock.advance(by: .milliseconds(20))
            let key = IdempotencyKey(user: "busy", id: "b\(index)")
            _ = try await store.claim(key, fingerprint: 1, on: eventLoop).get()
            store.complete(key, reply: ByteBuffer(string: "r"), remember: true)
        }
        #expect(store.count == 64, "only the busy user's ids are left")
    }

    @Test("memory is bounded per user and in all")
    func storeIsBounded() async throws {
        let eventLoop = MultiThreadedEventLoopGroup.singleton.any()
        let store = InMemoryIdempotencyStore(window: .seconds(600), maxKeysPerUser: 100, maxKeys: 250, clock: TestClock())
        for index in 0..<1000 {
            let key = IdempotencyKey(user: "u\(index % 2)", id: "id\(index)")
            _ = try await store.claim(key, fingerprint: 1, on: eventLoop).get()
            store.complete(key, reply: ByteBuffer(string: "r\(index)"), remember: true)
        }
        #expect(store.count == 200, "100 per user, the oldest forgotten")
        // The newest of each user are the ones kept.
        guard case .replied(let reply) = try await store.claim(IdempotencyKey(user: "u1", id: "id999"), fingerprint: 1, on: eventLoop).get() else {
            Issue.record("the newest id should be remembered")
            return
        }
        #expect(String(buffer: reply) == "r999")
        guard case .first = try await store.claim(IdempotencyKey(user: "u1", id: "id1"), fingerprint: 1, on: eventLoop).get() else {
            Issue.record("the oldest id should be forgotten")
            return
        }
        for index in 0..<500 {
            let key = IdempotencyKey(user: "many\(index)", id: "x")
            _ = try await store.claim(key, fingerprint: 1, on: eventLoop).get()
        }
        #expect(store.count <= 250)
    }
}

/// One message at a time per connection, in arrival order, with a bound that stops reading.
@Suite("Handler order and inbound backpressure")
struct HandlerOrderTests {
    @Test("one connection's handlers run one at a time in arrival order; at the bound the server stops reading")
    func handlersRunInOrder() async throws {
        let order = TestLockedBox<[Int]>([])
        let started = TestSignal()
        let gate = TestSignal()
        let socketBox = TestLockedBox<Socket?>(nil)
        struct Step: Codable, Sendable { let n: Int }
        var router = EventRouter.chat
        router.on("step", as: Step.self) { step, context in
            if step.n == 0 {
                socketBox.withLock { $0 = context.socket }
                started.fire()
                try await gate.wait("the test to release step 0", timeout: .seconds(10))
            }
            order.withLock { $0.append(step.n) }
            return ["n": step.n]
        }
        var configuration = SwitchboardConfiguration()
        configuration.maxHandlersInFlight = 3
        try await TestServers.with(configuration: configuration, router: router) { server in
            let client = try await server.open("alice")
            try await client.sendText(#"{"event":"step","id":"s0","data":{"n":0}}"#)
            try await started.wait("step 0 to start")
            for n in 1..<8 {
                try await client.sendText(#"{"event":"step","id":"s\#(n)","data":{"n":\#(n)}}"#)
            }
            let socket = try #require(socketBox.withLock { $0 })
            try await waitUntil("the server to stop reading from the connection") {
                try await socket.eventLoop.submit { socket.handlers?.readsPaused == true }.get()
            }
            #expect(order.withLock { $0 }.isEmpty, "nothing ran past the blocked step 0")
            gate.fire()
            for n in 0..<8 {
                let reply = try await client.nextJSON()
                #expect(reply["id"]?.stringValue == "s\(n)", "\(reply)")
            }
            #expect(order.withLock { $0 } == Array(0..<8))
            try await waitUntil("the queue to be gone") {
                try await socket.eventLoop.submit { socket.handlers == nil && !socket.busy }.get()
            }
            await client.close()
        }
    }
}
