import ServiceLifecycle

/// The `run()` of the in-memory stores' services: `sweep` every tenth of `period` (between 1 s
/// and 1 min), until cancelled or the service group shuts down.
enum ExpirySweep {
    /// How often a store with this retention period or window is swept.
    static func interval(for period: Duration) -> Duration {
        min(max(period / 10, .seconds(1)), .seconds(60))
    }

    static func run(period: Duration, sleep: @escaping @Sendable (Duration) async throws -> Void, _ sweep: @escaping @Sendable () -> Void) async {
        let interval = interval(for: period)
        // Cancelled, sleep included, as soon as the service group shuts down.
        do {
            try await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    try await sleep(interval)
                    sweep()
                }
            }
        } catch {
            // Cancelled: shutting down is a normal end.
        }
    }
}
