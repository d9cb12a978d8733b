import Foundation
import NIOCore
@testable import Switchboard
import SwitchboardClient

/// What `message.send` takes and acks, for the client tests.
struct ClientChatPost: Encodable, Sendable {
    let room: String
    let content: String
}

struct ClientChatPosted: Decodable, Sendable {
    let eid: String
    let ts: Int
}

struct ClientChatMessage: Decodable, Sendable {
    let from: String
    let content: String
}

/// Collects everything a client's `events` delivers, for tests to wait on (bounded) and check.
final class CollectedEvents: Sendable {
    let client: SwitchboardClient
    private let box = TestLockedBox<[ClientEvent]>([])
    private let finished = TestSignal()

    init(_ client: SwitchboardClient) {
        self.client = client
        let box = self.box
        let finished = self.finished
        Task {
            for await event in client.events { box.withLock { $0.append(event) } }
            finished.fire()
        }
    }

    var all: [ClientEvent] { box.withLock { $0 } }

    var received: [ReceivedEvent] {
        all.compactMap { if case .event(let event) = $0 { return event } else { return nil } }
    }

    /// `message.new` events, in the order delivered.
    var messages: [ReceivedEvent] { received.filter { $0.event == "message.new" } }

    /// Their contents.
    var contents: [String] { messages.compactMap { try? $0.decode(ClientChatMessage.self).content } }

    var states: [ConnectionState] {
        all.compactMap { if case .state(let state) = $0 { return state } else { return nil } }
    }

    var refreshes: [RoomRefresh] {
        all.compactMap { if case .refresh(let refresh) = $0 { return refresh } else { return nil } }
    }

    var opens: Int { states.filter { $0 == .open }.count }

    var reconnectReasons: [DisconnectReason] {
        states.compactMap { if case .reconnecting(_, _, let reason) = $0 { return reason } else { return nil } }
    }

    var isFinished: Bool { finished.hasFired }

    func waitFor(_ description: String, timeout: Duration = .seconds(15), _ condition: @escaping @Sendable (CollectedEvents) -> Bool) async throws {
        try await waitUntil("\(description); events so far: \(summary)", timeout: timeout) { condition(self) }
    }

    func waitForOpens(_ count: Int, timeout: Duration = .seconds(15)) async throws {
        try await waitFor("\(count) opens", timeout: timeout) { $0.opens >= count }
    }

    func waitForContents(_ expected: Set<String>, timeout: Duration = .seconds(20)) async throws {
        try await waitFor("contents \(expected.sorted().prefix(5))…", timeout: timeout) { expected.isSubset(of: Set($0.contents)) }
    }

    /// The last few events, for failure messages.
    var summary: String {
        let events = all
        return "\(events.count) events, last: " + events.suffix(8).map { "\($0)" }.joined(separator: " | ")
    }
}

/// The latest server-side socket of each user (recorded when it joins a room, which every resume
/// does), so that a test can make the server drop a connection.
final class SocketRegistry: Sendable {
    private let sockets = TestLockedBox<[String: Socket]>([:])

    var authorizer: SwitchboardServer.JoinAuthorizer {
        { socket, _ in
            self.sockets.withLock { $0[socket.user.id] = socket }
            return true
        }
    }

    func socket(of user: String) -> Socket? { sockets.withLock { $0[user] } }

    /// The server ends `user`'s connection without a Close frame: FIN, or RST with `reset`.
    func abort(_ user: String, reset: Bool = false) async throws {
        guard let socket = socket(of: user) else { throw TestClientError.connectFailed("no socket of \(user)") }
        if reset, let options = socket.channel as? any SocketOptionProvider {
            try? await options.setSoLinger(linger(l_onoff: 1, l_linger: 0)).get()
        }
        try? await socket.channel.close()
    }
}

enum ClientTesting {
    /// Reconnect settings fast enough for tests (the schedule itself has unit tests).
    static var fast: SwitchboardClient.Configuration {
        var configuration = SwitchboardClient.Configuration()
        configuration.backoff = BackoffPolicy(
            initial: .milliseconds(20), maximum: .milliseconds(200), jitter: 0.5, floor: .milliseconds(10),
            resetAfter: .seconds(10), prompt: .milliseconds(10)...(.milliseconds(50)))
        configuration.connectTimeout = .seconds(5)
        configuration.logger = TestServers.defaultLogger
        return configuration
    }

    static func token(_ subject: String, ttl: Duration = .seconds(600)) async throws -> String {
        try await TokenMinter(hs256Secret: TestServer.secret).mint(subject: subject, ttl: ttl)
    }

    /// Reads `message.new` events from a raw test client until one with content `last`; returns
    /// the contents in order.
    static func contents(_ client: TestWebSocketClient, through last: String, timeout: Duration = .seconds(20)) async throws -> [String] {
        var contents: [String] = []
        let deadline = ContinuousClock.now + timeout
        while contents.last != last {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { throw TestClientError.timeout("no \(last) after \(contents)") }
            let message = try await client.nextJSON(timeout: remaining)
            if message["event"]?.stringValue == "message.new", let content = message["data"]?["content"]?.stringValue {
                contents.append(content)
            }
        }
        return contents
    }

    /// Offsets strictly increase within one epoch.
    static func strictlyIncreasing(_ events: [ReceivedEvent]) -> Bool {
        zip(events, events.dropFirst()).allSatisfy { previous, next in
            guard let a = previous.eid, let b = next.eid else { return false }
            return a.epoch != b.epoch || a.offset < b.offset
        }
    }
}

extension ClientTesting {
    /// The task's value, or a `.timeout` error (and the task cancelled) after `timeout`.
    static func value<T: Sendable>(of task: Task<T, any Error>, timeout: Duration = .seconds(15)) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await task.value }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else {
                task.cancel()
                throw TestClientError.timeout("no result within \(timeout)")
            }
            return value
        }
    }
}
