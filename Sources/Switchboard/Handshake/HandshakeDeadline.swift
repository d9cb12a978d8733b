import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A store call of the handshake did not answer within ``SwitchboardConfiguration/handshakeStoreTimeout``.
struct HandshakeDeadlineExceeded: Error, CustomStringConvertible {
    let timeout: Duration
    var description: String { "no answer within \(timeout)" }
}

/// Bounds the store calls of one handshake. The call runs in a task of its own, so that a store
/// that ignores cancellation cannot hold the handshake past the deadline either.
struct HandshakeDeadline {
    let timeout: Duration

    /// The result of `operation`, or ``HandshakeDeadlineExceeded`` once `timeout` has passed.
    /// `late` gets a result that arrives after the deadline gave up on it (e.g. to give back what
    /// was taken).
    func run<T: Sendable>(
        late: (@Sendable (T) -> Void)? = nil,
        _ operation: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let eventLoop = MultiThreadedEventLoopGroup.singleton.any()
        let promise = eventLoop.makePromise(of: T.self)
        let settled = NIOLockedValueBox(false)
        let settle: @Sendable () -> Bool = {
            settled.withLockedValue { done in
                defer { done = true }
                return !done
            }
        }
        let work = Task {
            let result = await Result { try await operation() }
            if settle() {
                promise.completeWith(result)
            } else if case .success(let value) = result {
                late?(value)
            }
        }
        let timeout = self.timeout
        let timer = eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            if settle() {
                work.cancel()
                promise.fail(HandshakeDeadlineExceeded(timeout: timeout))
            }
        }
        promise.futureResult.whenComplete { _ in timer.cancel() }
        return try await promise.futureResult.get()
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do {
            self = .success(try await body())
        } catch {
            self = .failure(error)
        }
    }
}
