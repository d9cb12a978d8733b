import ServiceLifecycle

/// A service that, when the node shuts down gracefully, ends the presence grace period of the
/// connections that ended within it (``RoomManager/departNow()``): the other nodes' members hear
/// `presence.leave` at once rather than when this node's presence entries expire.
///
/// Services shut down in reverse order: add it after the presence store and the broker it uses
/// (so they still run when it acts) and before the HTTP server (so that no new connection comes).
/// It drains the server first (``SwitchboardServer/drain()``), which waits for the drain already
/// under way when there is one.
public struct PresenceDepartures: Service {
    let switchboard: SwitchboardServer

    public init(switchboard: SwitchboardServer) {
        self.switchboard = switchboard
    }

    public func run() async throws {
        // Returns when the graceful shutdown begins, or throws when cancelled.
        try? await gracefulShutdown()
        // The HTTP server's shutdown has started the drain; its connections may still be closing.
        // `drain()` returns once they have all ended (bounded by the drain timeout), so their
        // presence is given up here too, and their slots while Redis is still there.
        await switchboard.drain()
        await switchboard.rooms.departNow()
    }
}
