/// One update of the dashboard: every metric's value at one moment.
///
/// `seq` numbers the updates of a board from 1 without gaps: a viewer that holds the snapshot of
/// `seq` 40 ignores a live update 40 it may receive next (the snapshot is read after the join's
/// position), and sees a gap if one was lost.
public struct MetricSample: Codable, Sendable, Equatable {
    public let seq: Int
    /// Milliseconds since 1970.
    public let ts: Int64
    /// Metric name to value, e.g. `"cpu": 41.5`.
    public let values: [String: Double]

    public init(seq: Int, ts: Int64, values: [String: Double]) {
        self.seq = seq
        self.ts = ts
        self.values = values
    }
}

/// The `state.refresh` snapshot of a board: its latest samples, oldest first (the last one holds
/// the current values), so that a late joiner draws the charts at once.
public struct BoardSnapshot: Codable, Sendable, Equatable {
    public let seq: Int
    public let samples: [MetricSample]
}
