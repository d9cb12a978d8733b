import Hummingbird
import Prometheus
import Switchboard

/// A server's metrics in Prometheus' text format: a ``SwitchboardMetrics`` reporting into a
/// Prometheus registry of its own (or the app's, to expose the app's metrics on the same page).
public struct SwitchboardPrometheus: Sendable {
    /// Where the metrics are kept; an app may register its own metrics in it too.
    public let registry: PrometheusCollectorRegistry
    /// Reports the server's counters into the registry.
    public let metrics: SwitchboardMetrics

    /// The content type of ``exposition()``.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    public init(switchboard: SwitchboardServer, registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        // The histogram's buckets are the loops' own, so that its counts per bucket are exact.
        factory.durationHistogramBuckets[SwitchboardMetrics.handlerLatencyLabel] = LatencyBuckets.boundsNanoseconds.map { .nanoseconds($0) }
        self.metrics = SwitchboardMetrics(switchboard: switchboard, factory: factory)
    }

    /// Reads the server's counters (every event loop's, added up) and returns the registry's
    /// metrics as Prometheus text.
    public func exposition() async -> [UInt8] {
        await metrics.update()
        return registry.emitToBuffer()
    }
}

extension RouterMethods {
    /// Serves `switchboard`'s metrics at `path` (default `/metrics`) in Prometheus' text format
    /// (see ``SwitchboardMetrics`` for the names). Opt-in: a server counts either way (on each
    /// event loop, without locks), and nothing is reported until a scrape reads the counts.
    /// - Returns: the exporter, whose `registry` the app may add its own metrics to.
    @discardableResult
    public func addSwitchboardMetrics(
        _ switchboard: SwitchboardServer, path: String = "/metrics", registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()
    ) -> SwitchboardPrometheus {
        let exporter = SwitchboardPrometheus(switchboard: switchboard, registry: registry)
        get(RouterPath(path)) { _, _ in
            let text = await exporter.exposition()
            return Response(status: .ok, headers: [.contentType: SwitchboardPrometheus.contentType], body: .init(byteBuffer: ByteBuffer(bytes: text)))
        }
        return exporter
    }
}
