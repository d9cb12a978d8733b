import Foundation
import ServiceLifecycle
import Switchboard

/// Feeds the operations page: once a second it reads the server's metrics and sends them as
/// `ops.stats` to the operations room, ephemeral (no history, no position), so the page is
/// Switchboard's own broadcast-only room used on itself. With no one in the room the event reaches
/// no one and costs one publish.
struct OpsFeed: Service {
    let switchboard: SwitchboardServer
    let room: String
    let node: String
    let interval: Duration
    let readiness: StandaloneApplication.Readiness

    func run() async throws {
        let started = ContinuousClock.now
        var previous: (snapshot: SwitchboardMetricsSnapshot, at: ContinuousClock.Instant)?
        // Ends with the service group's graceful shutdown, between two ticks.
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            let now = ContinuousClock.now
            let snapshot = await switchboard.metricsSnapshot()
            let seconds = previous.map { (now - $0.at) / .seconds(1) } ?? 0
            let stats = OpsStats(
                node: node, uptime: (now - started) / .seconds(1), notReady: switchboard.isDraining ? "draining" : readiness(),
                now: snapshot, before: previous?.snapshot, seconds: seconds)
            previous = (snapshot, now)
            try? await switchboard.rooms.broadcastEphemeral(room: room, event: "ops.stats", data: stats)
            try? await Task.sleep(for: interval)
        }
    }
}
