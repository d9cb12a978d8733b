import Foundation
import NIOCore
import Testing

@testable import Switchboard

/// Consecutive `message.send`s of one connection are pipelined: with a broker (or an idempotency
/// store) that answers later, the next is handled while the previous still waits, in order.
@Suite("Pipelined message.send")
struct PipeliningTests {
    static var immediateLeave: SwitchboardConfiguration {
        var configuration = SwitchboardConfiguration()
        configuration.presenceGracePeriod = .zero
        return configuration
    }

    static func send(_ client: TestWebSocketClient, _ content: String, id: String) async throws {
        try await client.sendText(#"{"event":"message.send","data":{"room":"lobby","content":"\#(content)"},"id":"\#(id)"}"#)
    }

    /// alice and bob in the lobby, alice past bob's `presence.join`.
    static func aliceAndBob(_ server: TestServer) async throws -> (alice: TestWebSocketClient, bob: TestWebSocketClient) {
        let alice = try await server.open("alice")
        let bob = try await server.open("bob")
        _ = try await RoomTests.join(alice, "lobby")
        _ = try await RoomTests.join(bob, "lobby")
        _ = try await alice.next(event: "presence.join")
        return (alice, bob)
    }

    /// The next message `client` gets is the ack of a heartbeat sent now: nothing else was on its
    /// way to it.
    static func expectNothingElse(_ client: TestWebSocketClient, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try await client.sendText(#"{"event":"presence.heartbeat","id":"barrier"}"#)
        let next = try await client.nextJSON()
        #expect(next["event"]?.stringValue == "ack" && next["id"]?.stringValue == "barrier", "\(next)", sourceLocation: sourceLocation)
    }

    @Test("a connection's message.sends are published without waiting for each other's answer, take their positions in order, and are acked in order")
    func publishesOverlap() async throws {
        let broker = HeldPublishBroker()
        try await TestServers.with(broker: broker) { server in
            let (alice, bob) = try await Self.aliceAndBob(server)
            for index in 1...3 { try await Self.send(alice, "m\(index)", id: "m\(index)") }
            // All three reach the broker while none has been answered.
            try await waitUntil("three publishes under way", timeout: .seconds(5)) { broker.published.withLock { $0 } == 3 }
            var positions: [EventID] = []
            for index in 1...3 {
                let event = try await bob.next(event: "message.new")
                #expect(event["data"]?["content"]?.stringValue == "m\(index)", "\(event)")
                positions.append(try #require(Resume.eid(event)))
            }
            #expect(positions.map(\.offset) == [positions[0].offset, positions[0].offset + 1, positions[0].offset + 2])
            try await Self.expectNothingElse(alice)
            broker.release.fire()
            for index in 1...3 {
                let ack = try await alice.nextJSON()
                #expect(ack["event"]?.stringValue == "ack" && ack["id"]?.stringValue == "m\(index)", "\(ack)")
                #expect(ack["data"]?["eid"]?.stringValue == positions[index - 1].description, "\(ack)")
            }
        }
    }

    @Test("a message that is not a message.send waits until the message.sends before it are answered")
    func otherMessagesWait() async throws {
        let broker = HeldPublishBroker()
        try await TestServers.with(broker: broker) { server in
            let alice = try await server.open("alice")
            _ = try await RoomTests.join(alice, "lobby")
            try await Self.send(alice, "m1", id: "m1")
            try await Self.send(alice, "m2", id: "m2")
            try await alice.sendText(#"{"event":"room.leave","data":{"room":"lobby"},"id":"leave"}"#)
            try await waitUntil("two publishes under way", timeout: .seconds(5)) { broker.published.withLock { $0 } == 2 }
            // The leave is answered at once when handled; it has not been.
            try await Self.expectNothingElse(alice)
            broker.release.fire()
            var replies: [String] = []
            for _ in 0..<3 {
                let reply = try await alice.nextJSON()
                #expect(reply["event"]?.stringValue == "ack", "\(reply)")
                replies.append(reply["id"]?.stringValue ?? "?")
            }
            #expect(replies == ["m1", "m2", "leave"])
        }
    }

    @Test("with an idempotency store that answers later, the ids of a burst are claimed at once, and the messages handled in order")
    func claimsOverlap() async throws {
        let store = HeldClaimStore()
        try await TestServers.with(idempotency: store) { server in
            let (alice, bob) = try await Self.aliceAndBob(server)
            for index in 1...3 { try await Self.send(alice, "m\(index)", id: "m\(index)") }
            try await waitUntil("three claims under way", timeout: .seconds(5)) { store.claims.withLock { $0 } == 3 }
            try await Self.expectNothingElse(bob)
            store.release.fire()
            for index in 1...3 {
                let event = try await bob.next(event: "message.new")
                #expect(event["data"]?["content"]?.stringValue == "m\(index)", "\(event)")
                let ack = try await alice.next(event: "m\(index)", field: "id")
                #expect(ack["event"]?.stringValue == "ack", "\(ack)")
            }
        }
    }

    @Test("a connection that ends while its messages wait with their ids claimed gives the ids back: a retry elsewhere is handled")
    func abandonedClaimsAreReleased() async throws {
        let store = HeldClaimStore()
        try await TestServers.with(configuration: Self.immediateLeave, idempotency: store) { server in
            let (alice, bob) = try await Self.aliceAndBob(server)
            for index in 1...2 { try await Self.send(alice, "m\(index)", id: "m\(index)") }
            try await waitUntil("two claims under way", timeout: .seconds(5)) { store.claims.withLock { $0 } == 2 }
            try await alice.resetTCP()
            // The server has dropped alice's connection (and its waiting messages) once bob hears
            // that she left.
            _ = try await bob.next(event: "presence.leave")
            store.release.fire()
            // Both first attempts are given back (not remembered).
            try await waitUntil("the abandoned claims given back", timeout: .seconds(5)) { store.forgotten.withLock { $0 } == 2 }
            // The retry of m2 on a new connection runs (it neither waits on the abandoned attempt
            // nor gets its reply), and is delivered.
            let again = try await server.open("alice")
            _ = try await RoomTests.join(again, "lobby")
            try await Self.send(again, "m2", id: "m2")
            let ack = try await again.next(event: "m2", field: "id")
            #expect(ack["event"]?.stringValue == "ack" && ack["data"]?["eid"] != nil, "\(ack)")
            let delivered = try await bob.next(event: "message.new")
            #expect(delivered["data"]?["content"]?.stringValue == "m2", "\(delivered)")
            try await Self.expectNothingElse(bob)
        }
    }
}

/// The in-memory broker whose publishes take effect at once (position, history, delivery) but are
/// answered only once the test releases them, as a broker across nodes answers after a round trip.
final class HeldPublishBroker: Broker {
    let inner = InMemoryBroker()
    let release = TestSignal()
    let published = TestLockedBox(0)
    /// The publishes held so far, answered in this order once released.
    private let queue = TestLockedBox<[@Sendable () -> Void]>([])

    func attach(_ subscriber: any BrokerSubscriber) { inner.attach(subscriber) }
    func subscribe(_ room: String, on eventLoop: any EventLoop) -> EventLoopFuture<Void> { inner.subscribe(room, on: eventLoop) }
    func unsubscribe(_ room: String) { inner.unsubscribe(room) }
    func publish(_ publication: Publication, on eventLoop: any EventLoop) -> EventLoopFuture<EventID?> {
        let answer = inner.publish(publication, on: eventLoop)
        // Presence events go through at once; only the messages are held.
        guard publication.event == "message.new" else { return answer }
        published.withLock { $0 += 1 }
        let promise = eventLoop.makePromise(of: EventID?.self)
        queue.withLock { $0.append { answer.cascade(to: promise) } }
        let (release, queue) = (self.release, self.queue)
        Task {
            try await release.wait("the test to release the publishes", timeout: .seconds(10))
            // Whichever task comes first answers every publish made so far, in order (as Redis
            // answers one connection's commands).
            for answer in queue.withLock({ queue in defer { queue = [] }; return queue }) { answer() }
        }
        return promise.futureResult
    }
    func recover(_ room: String, after position: EventID?, limit: Int, on eventLoop: any EventLoop) -> EventLoopFuture<Recovery> {
        inner.recover(room, after: position, limit: limit, on: eventLoop)
    }
    func latest(_ room: String, limit: Int, on eventLoop: any EventLoop) -> EventLoopFuture<[HistoryEntry]> { inner.latest(room, limit: limit, on: eventLoop) }
}

/// The in-memory idempotency store whose claims are answered only once the test releases them
/// (then in the order they were made), as a store across nodes answers after a round trip.
final class HeldClaimStore: IdempotencyStore {
    let inner = InMemoryIdempotencyStore()
    let release = TestSignal()
    let claims = TestLockedBox(0)
    /// Completions that forget their key.
    let forgotten = TestLockedBox(0)
    /// The claims made so far, answered in this order once released.
    private let queue = TestLockedBox<[@Sendable () -> Void]>([])

    func claim(_ key: IdempotencyKey, fingerprint: UInt64, on eventLoop: any EventLoop) -> EventLoopFuture<IdempotencyClaim> {
        claims.withLock { $0 += 1 }
        let promise = eventLoop.makePromise(of: IdempotencyClaim.self)
        let inner = self.inner
        queue.withLock { $0.append { inner.claim(key, fingerprint: fingerprint, on: eventLoop).cascade(to: promise) } }
        let (release, queue) = (self.release, self.queue)
        Task {
            try await release.wait("the test to release the claims", timeout: .seconds(10))
            // Whichever task comes first answers every claim made so far, in order.
            for answer in queue.withLock({ queue in defer { queue = [] }; return queue }) { answer() }
        }
        return promise.futureResult
    }

    func complete(_ key: IdempotencyKey, reply: ByteBuffer, remember: Bool) {
        if !remember { forgotten.withLock { $0 += 1 } }
        inner.complete(key, reply: reply, remember: remember)
    }
}
