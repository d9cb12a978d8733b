import ServiceLifecycle

/// A service that drains a ``SwitchboardServer`` when its `ServiceGroup` shuts down gracefully
/// (SIGTERM, SIGINT): see ``SwitchboardServer/drain()``.
///
/// A group shuts its services down in reverse order, each after the one behind it has returned:
/// put this one after the HTTP app, so that the app still answers while the server drains
/// (handshakes get 503 `draining`, a readiness check can say "not ready"), and stops once the
/// drain is over.
///
/// ```swift
/// let group = ServiceGroup(configuration: .init(
///     services: [app, SwitchboardDrainService(switchboard)],
///     gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
/// ```
public struct SwitchboardDrainService: Service {
    let switchboard: SwitchboardServer

    public init(_ switchboard: SwitchboardServer) {
        self.switchboard = switchboard
    }

    /// Waits for the graceful shutdown, then drains. Cancelled (a shutdown that is not graceful),
    /// it returns without draining.
    public func run() async throws {
        do {
            try await gracefulShutdown()
        } catch {
            return
        }
        await switchboard.drain()
    }
}
