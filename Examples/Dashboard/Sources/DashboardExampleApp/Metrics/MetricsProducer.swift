import Foundation
import Logging
import ServiceLifecycle

/// The demo's producer: publishes simulated server metrics (CPU, memory, requests per second, p99
/// latency) to a board every `interval`, server-side, in the app's own process. A real app would
/// publish what it measures; a backend in another language can publish through an HTTP API instead.
public struct MetricsProducer<C: Clock & Sendable>: Service where C.Duration == Duration {
    let board: MetricsBoard
    let interval: Duration
    let clock: C
    let logger: Logger

    public init(board: MetricsBoard, interval: Duration = .seconds(1), clock: C = ContinuousClock(), logger: Logger = Logger(label: "dashboard")) {
        self.board = board
        self.interval = interval
        self.clock = clock
        self.logger = logger
    }

    public func run() async throws {
        // Returns when the app shuts down gracefully (the sleep is cancelled).
        try? await cancelWhenGracefulShutdown {
            var simulation = SimulatedMetrics()
            var next = clock.now
            while !Task.isCancelled {
                do {
                    try await board.publish(simulation.next())
                } catch {
                    logger.warning("publishing metrics failed", metadata: ["error": "\(error)"])
                }
                next = next.advanced(by: interval)
                try await clock.sleep(until: next, tolerance: nil)
            }
        }
    }
}

/// Plausible-looking metrics: each a bounded random walk with a daily-ish wave.
struct SimulatedMetrics {
    private var step = 0
    private var cpu = 35.0
    private var memory = 512.0
    private var requests = 1200.0
    private var latency = 40.0

    mutating func next() -> [String: Double] {
        step += 1
        let wave = sin(Double(step) / 15)
        cpu = clamp(cpu + Double.random(in: -4...4) + wave, 2, 98)
        memory = clamp(memory + Double.random(in: -8...9), 256, 1024)
        requests = clamp(requests + Double.random(in: -90...90) + 25 * wave, 100, 4000)
        latency = clamp(latency * 0.8 + (20 + requests / 60 + Double.random(in: -6...12)) * 0.2, 5, 400)
        return [
            "cpu": (cpu * 10).rounded() / 10,
            "memory": memory.rounded(),
            "requests": requests.rounded(),
            "latency": (latency * 10).rounded() / 10,
        ]
    }

    private func clamp(_ value: Double, _ low: Double, _ high: Double) -> Double {
        min(max(value, low), high)
    }
}
