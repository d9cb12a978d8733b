import Foundation
import NIOCore
@testable import Switchboard

extension TestServer {
    /// Opens a connection as `subject` without saying hello (so that the test sends its own).
    func openQuiet(_ subject: String, claims: [String: JSONValue] = [:]) async throws -> TestWebSocketClient {
        let token = try await token(subject, claims: claims)
        return try await TestWebSocketClient.open(port: port, path: "\(switchboard.configuration.path)?token=\(token)")
    }
}

enum Resume {
    /// Sends `session.hello` resuming `positions` and returns its ack.
    static func hello(_ client: TestWebSocketClient, _ positions: [String: String], id: String = "h") async throws -> [String: JSONValue] {
        let resume = positions.map { #""\#($0.key)":"\#($0.value)""# }.joined(separator: ",")
        try await client.sendText(#"{"event":"session.hello","id":"\#(id)","data":{"resume":{\#(resume)}}}"#)
        return try await client.next(event: id, field: "id")
    }

    /// The ack's outcome for `room`.
    static func outcome(_ ack: [String: JSONValue], _ room: String) -> [String: JSONValue]? {
        ack["data"]?["rooms"]?.arrayValue?.first { $0["room"]?.stringValue == room }?.objectValue
    }

    /// Reads the next messages until one of `room` has `eid` `through` (inclusive); fails on
    /// anything that is not an event of that room with an eid.
    static func events(_ client: TestWebSocketClient, room: String, through: EventID, timeout: Duration = .seconds(10)) async throws -> [[String: JSONValue]] {
        var events: [[String: JSONValue]] = []
        let deadline = ContinuousClock.now + timeout
        while true {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { throw TestClientError.timeout("no event \(through) in \(room) after \(events.count) events") }
            let message = try await client.nextJSON(timeout: remaining)
            guard message["room"]?.stringValue == room, let eid = message["eid"]?.stringValue.flatMap(EventID.init) else {
                throw TestClientError.unexpectedFrame("expected an event of \(room), got \(message)")
            }
            events.append(message)
            if eid == through { return events }
        }
    }

    static func eid(_ message: [String: JSONValue]) -> EventID? {
        message["eid"]?.stringValue.flatMap(EventID.init)
    }

    /// Each publisher sends `p<index>-<n>` to `room`, one after the other, until `stop` fires or
    /// it has sent `limit`; `sent[index]` counts the acked ones.
    static func publishing(
        _ publishers: [TestWebSocketClient], room: String, limit: Int, stop: TestSignal, sent: TestLockedBox<[Int]>
    ) -> Task<Void, any Error> {
        Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, publisher) in publishers.enumerated() {
                    group.addTask {
                        for message in 0..<limit where !stop.hasFired {
                            _ = try await ResumeTests.send(publisher, room, "p\(index)-\(message)")
                            sent.withLock { $0[index] = message + 1 }
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
    }
}

/// A real broker with latency: the in-memory broker, whose recoveries complete only when the test
/// lets them. `readEarly` reads the history at once and holds back only the answer (so that events
/// published meanwhile reach the connection only through the room's buffer); otherwise the read
/// itself waits (so that they are both in the read and in the buffer, and must be merged).
final class DelayedRecoveryBroker: Broker {
    let inner: InMemoryBroker
    let readEarly: Bool
    let started = TestSignal()
    let release = TestSignal()

    init(inner: InMemoryBroker, readEarly: Bool) {
        self.inner = inner
        self.readEarly = readEarly
    }

    func attach(_ subscriber: any BrokerSubscriber) { inner.attach(subscriber) }
    func subscribe(_ room: String, on eventLoop: any EventLoop) -> EventLoopFuture<Void> { inner.subscribe(room, on: eventLoop) }
    func unsubscribe(_ room: String) { inner.unsubscribe(room) }
    func publish(_ publication: Publication, on eventLoop: any EventLoop) -> EventLoopFuture<EventID?> { inner.publish(publication, on: eventLoop) }
    func latest(_ room: String, limit: Int, on eventLoop: any EventLoop) -> EventLoopFuture<[HistoryEntry]> { inner.latest(room, limit: limit, on: eventLoop) }

    func recover(_ room: String, after position: EventID?, limit: Int, on eventLoop: any EventLoop) -> EventLoopFuture<Recovery> {
        // Only resumes wait: plain joins (no position) go through, so that the test can set up.
        guard position != nil else { return inner.recover(room, after: position, limit: limit, on: eventLoop) }
        let early = readEarly ? inner.recoverNow(room, after: position, limit: limit) : nil
        started.fire()
        let promise = eventLoop.makePromise(of: Recovery.self)
        let inner = self.inner
        let release = self.release
        promise.completeWithTask {
            try await release.wait("the test to release the recovery", timeout: .seconds(10))
            return early ?? inner.recoverNow(room, after: position, limit: limit)
        }
        return promise.futureResult
    }
}

/// The in-memory broker with a fault switch: while `failing` is set, publishes and reads fail as a
/// broker whose backend went away would.
final class FaultyBroker: Broker {
    struct Unreachable: Error {}
    let inner = InMemoryBroker()
    let failing = TestLockedBox(false)

    func attach(_ subscriber: any BrokerSubscriber) { inner.attach(subscriber) }
    func subscribe(_ room: String, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        failing.withLock { $0 } ? eventLoop.makeFailedFuture(Unreachable()) : inner.subscribe(room, on: eventLoop)
    }
    func unsubscribe(_ room: String) { inner.unsubscribe(room) }
    func publish(_ publication: Publication, on eventLoop: any EventLoop) -> EventLoopFuture<EventID?> {
        failing.withLock { $0 } ? eventLoop.makeFailedFuture(Unreachable()) : inner.publish(publication, on: eventLoop)
    }
    func recover(_ room: String, after position: EventID?, limit: Int, on eventLoop: any EventLoop) -> EventLoopFuture<Recovery> {
        failing.withLock { $0 } ? eventLoop.makeFailedFuture(Unreachable()) : inner.recover(room, after: position, limit: limit, on: eventLoop)
    }
    func latest(_ room: String, limit: Int, on eventLoop: any EventLoop) -> EventLoopFuture<[HistoryEntry]> {
        failing.withLock { $0 } ? eventLoop.makeFailedFuture(Unreachable()) : inner.latest(room, limit: limit, on: eventLoop)
    }
}

/// The in-memory broker with a subscription that takes time (as a round trip to Redis does): a
/// subscribe completes only when the test releases it.
final class SlowSubscribeBroker: Broker {
    let inner = InMemoryBroker()
    let started = TestSignal()
    let release = TestSignal()
    let subscribeCalls = TestLockedBox(0)

    func attach(_ subscriber: any BrokerSubscriber) { inner.attach(subscriber) }
    func subscribe(_ room: String, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        subscribeCalls.withLock { $0 += 1 }
        started.fire()
        let promise = eventLoop.makePromise(of: Void.self)
        let (inner, release) = (self.inner, self.release)
        promise.completeWithTask {
            try await release.wait("the test to release the subscription", timeout: .seconds(10))
            try await inner.subscribe(room, on: eventLoop).get()
        }
        return promise.futureResult
    }
    func unsubscribe(_ room: String) { inner.unsubscribe(room) }
    func publish(_ publication: Publication, on eventLoop: any EventLoop) -> EventLoopFuture<EventID?> { inner.publish(publication, on: eventLoop) }
    func recover(_ room: String, after position: EventID?, limit: Int, on eventLoop: any EventLoop) -> EventLoopFuture<Recovery> {
        inner.recover(room, after: position, limit: limit, on: eventLoop)
    }
    func latest(_ room: String, limit: Int, on eventLoop: any EventLoop) -> EventLoopFuture<[HistoryEntry]> { inner.latest(room, limit: limit, on: eventLoop) }
}

