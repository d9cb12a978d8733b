import ServiceLifecycle

/// A service that, when the node shuts down gracefully, ends the presence grace period of the
/// connections that ended within it (``RoomManager/departNow()``): the other nodes' members hear
/// `presence.leave` at once rather than when this node's presence entries expire.
///
/// Services shut down in reverse order: add it after the presence store and the broker it uses
/// (so they still run when it acts) and before the HTTP server (so that no new connection comes).
public struct PresenceDepartures: Service {
    let switchboard: SwitchboardServer

    public init(switchboard: SwitchboardServer) {
        self.switchboard = switchboard
    }

    public func run() async throws {
        // Returns when the graceful shutdown begins, or throws when cancelled.
        try? await gracefulShutdown()
        // The HTTP server has stopped accepting, but its connections may still be in their close
        // handshake: they end within the close timeout, and their presence is given up here too.
        // (Their connection slots are given back at the same moment, while Redis is still there.)
        let deadline = ContinuousClock.now + switchboard.configuration.closeTimeout + .seconds(1)
        while await switchboard.connectionCount() > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        await switchboard.rooms.departNow()
    }
}
