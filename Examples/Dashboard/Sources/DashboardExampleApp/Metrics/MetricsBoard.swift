import Foundation
import NIOConcurrencyHelpers
import Switchboard

/// The dashboard's current values: what a producer publishes and what a joining viewer gets as its
/// snapshot. Publishing keeps the sample (the latest `keep`) and broadcasts it to the board's room
/// as `metrics.update`, a room event with an `eid`, so that a viewer who reconnects gets the
/// updates it missed replayed (or, when away too long, the snapshot again).
public final class MetricsBoard: Sendable {
    /// The room of the board; viewers may join it, only the server publishes to it.
    public let room: String
    /// How many samples the snapshot carries (default 120).
    public let keep: Int
    private let switchboard: SwitchboardServer
    private let state = NIOLockedValueBox<(seq: Int, samples: [MetricSample])>((0, []))
    private let order = PublishOrder()

    public init(room: String, switchboard: SwitchboardServer, keep: Int = 120) {
        self.room = room
        self.switchboard = switchboard
        self.keep = max(keep, 1)
    }

    /// Records `values` as the next sample and broadcasts it; returns it. Calls are serialized, so
    /// the samples reach every viewer in `seq` order.
    @discardableResult
    public func publish(_ values: [String: Double], at time: Date = Date()) async throws -> MetricSample {
        try await order.run {
            let sample = self.state.withLockedValue { state -> MetricSample in
                state.seq += 1
                let sample = MetricSample(seq: state.seq, ts: Int64(time.timeIntervalSince1970 * 1000), values: values)
                state.samples.append(sample)
                if state.samples.count > self.keep { state.samples.removeFirst(state.samples.count - self.keep) }
                return sample
            }
            // Kept before it is broadcast: a viewer joining meanwhile has it in its snapshot and
            // drops the live copy by its seq; the other way round it could miss it.
            try await self.switchboard.rooms.broadcast(room: self.room, event: "metrics.update", data: sample)
            return sample
        }
    }

    /// The snapshot a joining viewer gets.
    public func snapshot() -> BoardSnapshot {
        state.withLockedValue { BoardSnapshot(seq: $0.seq, samples: $0.samples) }
    }
}

/// Runs async bodies one at a time, in call order.
actor PublishOrder {
    private var tail: Task<Void, Never>?

    func run<Result: Sendable>(_ body: @escaping @Sendable () async throws -> Result) async throws -> Result {
        let previous = tail
        let task = Task { () async throws -> Result in
            await previous?.value
            return try await body()
        }
        tail = Task { _ = try? await task.value }
        return try await task.value
    }
}
