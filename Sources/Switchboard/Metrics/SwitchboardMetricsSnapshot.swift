import NIOCore

/// The server's counters and gauges at one moment, added up over its event loops.
public struct SwitchboardMetricsSnapshot: Sendable, Equatable {
    /// Open connections on this node.
    public var connections = 0
    /// Rooms with at least one member on this node.
    public var rooms = 0
    /// Whether the server is draining.
    public var draining = false
    /// The per-loop counts, added up.
    public var loops = LoopMetrics()
    /// Handshakes by outcome: `accepted`, or the code of the rejection (`token_invalid`,
    /// `rate_limited`, `draining`, …).
    public var handshakes: [String: Int] = [:]
    /// Connections closed as slow consumers (4008).
    public var slowConsumerCloses = 0
    /// What the rate limits did.
    public var rateLimits = RateLimitCounters()

    public init() {}
}

extension SwitchboardServer {
    /// Reads every event loop's counters on that loop and adds them up. Nothing is locked on the
    /// delivery path for it: each loop answers between two of its tasks. Call it as often as a
    /// scrape comes (see `SwitchboardMetrics` for swift-metrics).
    public func metricsSnapshot() async -> SwitchboardMetricsSnapshot {
        var snapshot = SwitchboardMetricsSnapshot()
        for hub in allHubs {
            guard let (count, metrics) = try? await hub.eventLoop.submit({ (hub.count, hub.metrics) }).get() else { continue }
            snapshot.connections += count
            snapshot.loops = snapshot.loops + metrics
        }
        snapshot.rooms = rooms.count
        snapshot.draining = isDraining
        snapshot.handshakes = handshakeOutcomes.all
        snapshot.slowConsumerCloses = slowConsumersClosed
        snapshot.rateLimits = rateLimitCounters
        return snapshot
    }
}
