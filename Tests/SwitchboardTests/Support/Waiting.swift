import Foundation

/// Waits, bounded, until `condition` holds; throws `.timeout` with `description` otherwise.
/// The condition is checked again every few milliseconds: this waits for a state, it does not
/// sleep in place of one.
func waitUntil(
    _ description: @autoclosure () -> String,
    timeout: Duration = .seconds(5),
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while try await !condition() {
        guard ContinuousClock.now < deadline else {
            throw TestClientError.timeout("not within \(timeout): \(description())")
        }
        try await Task.sleep(for: .milliseconds(5))
    }
}

/// A one-shot signal between a test and code it drives (a handler, an authorizer): one side
/// fires it, the other waits for it, bounded.
final class TestSignal: Sendable {
    private let fired = TestLockedBox(false)

    func fire() {
        fired.withLock { $0 = true }
    }

    var hasFired: Bool { fired.withLock { $0 } }

    /// Waits until fired; throws `.timeout` after `timeout`.
    func wait(_ description: String = "a signal", timeout: Duration = .seconds(5)) async throws {
        try await waitUntil(description, timeout: timeout) { hasFired }
    }
}
