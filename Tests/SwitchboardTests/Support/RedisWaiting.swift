import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Testing

@testable import SwitchboardRedis

/// Runs `body`, failing with `RedisTestError.timeout` if it has not finished within `timeout`.
/// The caller is resumed at the deadline even if `body` ignores cancellation, so a hang in the
/// code under test fails the test instead of hanging the run.
func withTimeout<T: Sendable>(
    _ timeout: Duration = .seconds(5),
    _ what: String,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let once = ResumeOnce<T>()
    return try await withCheckedThrowingContinuation { continuation in
        once.set(continuation)
        let work = Task {
            do { once.resume(.success(try await body())) } catch { once.resume(.failure(error)) }
        }
        Task {
            try? await Task.sleep(for: timeout)
            once.resume(.failure(RedisTestError.timeout("\(what) (within \(timeout))")))
            work.cancel()
        }
    }
}

private final class ResumeOnce<T: Sendable>: Sendable {
    private let state = NIOLockedValueBox<(CheckedContinuation<T, Error>?, Result<T, Error>?)>((nil, nil))

    func set(_ continuation: CheckedContinuation<T, Error>) {
        let early = state.withLockedValue { state -> Result<T, Error>? in
            if let result = state.1 {
                state.1 = nil
                return result
            }
            state.0 = continuation
            return nil
        }
        if let early { continuation.resume(with: early) }
    }

    func resume(_ result: Result<T, Error>) {
        let continuation = state.withLockedValue { state -> CheckedContinuation<T, Error>? in
            if let continuation = state.0 {
                state.0 = nil
                state.1 = nil
                return continuation
            }
            // Not set yet (or already resumed): keep the first result only.
            if state.1 == nil { state.1 = result }
            return nil
        }
        continuation?.resume(with: result)
    }
}

/// Runs `body` with a running client (waits until it is connected) and shuts it down after,
/// waiting until `run()` returned: no connection outlives the test.
func withClient<T: Sendable>(
    _ configuration: RedisConfiguration,
    waitForConnection: Bool = true,
    _ body: @escaping @Sendable (RedisClient) async throws -> T
) async throws -> T {
    let client = try RedisClient(configuration: configuration)
    let runner = Task { try await client.run() }
    let result: Result<T, Error>
    do {
        if waitForConnection { try await client.waitUntilConnected(timeout: .seconds(5)) }
        result = .success(try await withTimeout(.seconds(20), "the test body") { try await body(client) })
    } catch {
        result = .failure(error)
    }
    client.shutdown()
    try await withTimeout(.seconds(5), "RedisClient.run() to return after shutdown") { try await runner.value }
    #expect(client.openConnectionCount == 0)
    return try result.get()
}

/// Messages a subscriber delivered, for tests to wait on.
final class Inbox: Sendable {
    private let messages = NIOLockedValueBox<[(channel: String, payload: String)]>([])
    private let onLoop = NIOLockedValueBox(true)

    func record(_ channel: String, _ payload: ByteBuffer, on eventLoop: any EventLoop) {
        if !eventLoop.inEventLoop { onLoop.withLockedValue { $0 = false } }
        messages.withLockedValue { $0.append((channel, String(buffer: payload))) }
    }

    var all: [(channel: String, payload: String)] { messages.withLockedValue { $0 } }
    /// Whether every message was delivered on the subscriber's event loop.
    var allOnEventLoop: Bool { onLoop.withLockedValue { $0 } }

    func waitFor(channel: String, payload: String, timeout: Duration = .seconds(5)) async throws {
        try await waitUntil("message \(payload) on \(channel)", timeout: timeout) {
            all.contains { $0.channel == channel && $0.payload == payload }
        }
    }
}

/// Runs `body` with a running subscriber that records into `inbox` and counts reconnects.
func withSubscriber<T: Sendable>(
    _ configuration: RedisConfiguration,
    inbox: Inbox,
    onReconnect: @escaping @Sendable () -> Void = {},
    _ body: @escaping @Sendable (RedisSubscriber) async throws -> T
) async throws -> T {
    let eventLoopBox = NIOLockedValueBox<(any EventLoop)?>(nil)
    let subscriber = try RedisSubscriber(
        configuration: configuration,
        onMessage: { channel, payload in
            if let eventLoop = eventLoopBox.withLockedValue({ $0 }) { inbox.record(channel, payload, on: eventLoop) }
        },
        onReconnect: onReconnect)
    eventLoopBox.withLockedValue { $0 = subscriber.eventLoop }
    let runner = Task { try await subscriber.run() }
    let result: Result<T, Error>
    do {
        try await waitUntil("the subscriber to connect") { subscriber.isConnected }
        result = .success(try await withTimeout(.seconds(20), "the test body") { try await body(subscriber) })
    } catch {
        result = .failure(error)
    }
    subscriber.shutdown()
    try await withTimeout(.seconds(5), "RedisSubscriber.run() to return after shutdown") { try await runner.value }
    return try result.get()
}

/// A key or channel name unique to one test.
func uniqueName(_ prefix: String) -> String {
    "sbtest:\(prefix):\(UUID().uuidString.prefix(8))"
}

/// An error of one named step of a test, so a failure says where it happened.
struct StepError: Error, CustomStringConvertible {
    var step: String
    var error: any Error
    var description: String { "\(step): \(error)" }
}

/// Runs `body`, naming `step` in the error it throws.
func step<T>(_ step: String, _ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch {
        throw StepError(step: step, error: error)
    }
}
