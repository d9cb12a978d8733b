import CoreMetrics
import NIOConcurrencyHelpers

/// Reports a server's counters to swift-metrics: counters, gauges and a handler-latency timer,
/// labelled `switchboard_…` (names in Prometheus style, since that is where they usually go).
///
/// The server counts on each event loop without locks or atomics (see ``LoopMetrics``); nothing
/// reaches swift-metrics until ``update()`` reads them all (``SwitchboardServer/metricsSnapshot()``)
/// and adds what changed since the last update. Call it before each scrape (the
/// `SwitchboardHummingbird` route `/metrics` does), or every few seconds for a push backend.
///
/// Handler latency reaches the timer as bucket counts: each sample is recorded at its bucket's
/// upper bound (``LatencyBuckets/boundsNanoseconds``; twice the last bound for the overflow), so a
/// histogram with the same bounds (as the Prometheus route configures) has exact counts per
/// bucket, while its sum is an upper bound of the true one.
public final class SwitchboardMetrics: Sendable {
    /// The server whose metrics are reported.
    public let switchboard: SwitchboardServer
    private let factory: any MetricsFactory
    private let state: NIOLockedValueBox<State>

    /// Only touched under the box's lock.
    private struct State: Sendable {
        var reported = SwitchboardMetricsSnapshot()
        var counters: [String: Counter] = [:]
        var gauges: [String: Gauge] = [:]
        var handlerLatency: Timer?
    }

    /// The label of the handler-latency timer.
    public static let handlerLatencyLabel = "switchboard_handler_duration_seconds"

    /// - Parameters:
    ///   - switchboard: the server to report.
    ///   - factory: where the metrics go; the bootstrapped `MetricsSystem.factory` by default.
    public init(switchboard: SwitchboardServer, factory: any MetricsFactory = MetricsSystem.factory) {
        self.switchboard = switchboard
        self.factory = factory
        self.state = NIOLockedValueBox(State())
    }

    /// Reads the server's counters and reports what changed since the last update. Concurrent
    /// updates are safe: each count is reported once, whichever update sees it first.
    public func update() async {
        let snapshot = await switchboard.metricsSnapshot()
        state.withLockedValue { state in report(snapshot, into: &state) }
    }

    private func report(_ now: SwitchboardMetricsSnapshot, into state: inout State) {
        let before = state.reported
        func count(_ label: String, _ dimensions: [(String, String)] = [], _ new: Int, _ old: Int) {
            let key = label + dimensions.map { "|\($0.0)=\($0.1)" }.joined()
            let counter = state.counters[key] ?? Counter(label: label, dimensions: dimensions, factory: factory)
            state.counters[key] = counter
            // An update that read its snapshot before a later one was reported adds nothing.
            if new > old { counter.increment(by: new - old) }
        }
        func gauge(_ label: String, _ value: Int) {
            let gauge = state.gauges[label] ?? Gauge(label: label, factory: factory)
            state.gauges[label] = gauge
            gauge.record(value)
        }
        let loops = now.loops
        let old = before.loops
        gauge("switchboard_connections", now.connections)
        gauge("switchboard_rooms", now.rooms)
        gauge("switchboard_draining", now.draining ? 1 : 0)
        count("switchboard_connections_opened_total", [], loops.connectionsOpened, old.connectionsOpened)
        count("switchboard_messages_in_total", [], loops.messagesIn, old.messagesIn)
        count("switchboard_messages_out_total", [], loops.messagesOut, old.messagesOut)
        count("switchboard_bytes_out_total", [], loops.bytesOut, old.bytesOut)
        count("switchboard_deliveries_total", [], loops.deliveries, old.deliveries)
        count("switchboard_replayed_events_total", [], loops.replayedEvents, old.replayedEvents)
        count("switchboard_refreshes_total", [], loops.refreshes, old.refreshes)
        count("switchboard_slow_consumer_closes_total", [], now.slowConsumerCloses, before.slowConsumerCloses)
        count("switchboard_rate_limit_closes_total", [], now.rateLimits.connectionsClosed, before.rateLimits.connectionsClosed)
        count("switchboard_events_rate_limited_total", [], now.rateLimits.eventsLimited, before.rateLimits.eventsLimited)
        for (outcome, value) in now.handshakes {
            count("switchboard_handshakes_total", [("outcome", outcome)], value, before.handshakes[outcome] ?? 0)
        }
        for (code, value) in loops.closes {
            count("switchboard_closes_total", [("code", String(code))], value, old.closes[code] ?? 0)
        }
        let timer = state.handlerLatency ?? Timer(label: Self.handlerLatencyLabel, factory: factory)
        state.handlerLatency = timer
        let bounds = LatencyBuckets.boundsNanoseconds
        for (index, new) in loops.handlerLatency.counts.enumerated() {
            let added = new - old.handlerLatency.counts[index]
            guard added > 0 else { continue }
            let value = index < bounds.count ? bounds[index] : 2 * bounds[bounds.count - 1]
            for _ in 0..<added { timer.recordNanoseconds(value) }
        }
        state.reported = Self.maximum(before, now)
    }

    /// Each count at its highest: what has been reported so far.
    private static func maximum(_ a: SwitchboardMetricsSnapshot, _ b: SwitchboardMetricsSnapshot) -> SwitchboardMetricsSnapshot {
        var result = b
        result.loops.connectionsOpened = max(a.loops.connectionsOpened, b.loops.connectionsOpened)
        result.loops.messagesIn = max(a.loops.messagesIn, b.loops.messagesIn)
        result.loops.messagesOut = max(a.loops.messagesOut, b.loops.messagesOut)
        result.loops.bytesOut = max(a.loops.bytesOut, b.loops.bytesOut)
        result.loops.deliveries = max(a.loops.deliveries, b.loops.deliveries)
        result.loops.replayedEvents = max(a.loops.replayedEvents, b.loops.replayedEvents)
        result.loops.refreshes = max(a.loops.refreshes, b.loops.refreshes)
        result.loops.closes = a.loops.closes.merging(b.loops.closes, uniquingKeysWith: max)
        result.loops.handlerLatency = a.loops.handlerLatency.count >= b.loops.handlerLatency.count ? a.loops.handlerLatency : b.loops.handlerLatency
        result.handshakes = a.handshakes.merging(b.handshakes, uniquingKeysWith: max)
        result.slowConsumerCloses = max(a.slowConsumerCloses, b.slowConsumerCloses)
        result.rateLimits.connectionsClosed = max(a.rateLimits.connectionsClosed, b.rateLimits.connectionsClosed)
        result.rateLimits.eventsLimited = max(a.rateLimits.eventsLimited, b.rateLimits.eventsLimited)
        return result
    }
}
