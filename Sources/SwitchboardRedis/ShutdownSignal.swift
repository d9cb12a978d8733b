import NIOConcurrencyHelpers

/// A one-way flag that `run()` waits on: set by `shutdown()`, graceful shutdown or cancellation.
final class ShutdownSignal: Sendable {
    private struct State {
        var isSet = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = NIOLockedValueBox(State())

    var isSet: Bool { state.withLockedValue { $0.isSet } }

    func set() {
        let waiters = state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
            state.isSet = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once set, or when the calling task is cancelled (which sets it).
    func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLockedValue { state -> Bool in
                    if state.isSet { return true }
                    state.waiters.append(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            set()
        }
    }
}
