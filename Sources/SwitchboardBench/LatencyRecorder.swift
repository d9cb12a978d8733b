import Histogram

/// An HdrHistogram of latencies in microseconds (1 µs to 60 s, 3 significant digits).
///
/// Each event loop records into its own recorder, without locks; the recorders are merged when a
/// measurement ends (``merge(_:)``). Values above 60 s are recorded as 60 s and counted in
/// ``clamped``.
public struct LatencyRecorder: Sendable {
    /// The largest value kept exactly: 60 s in microseconds.
    public static let highestMicroseconds: UInt64 = 60_000_000

    private(set) var histogram = Histogram<UInt64>(
        lowestDiscernibleValue: 1, highestTrackableValue: LatencyRecorder.highestMicroseconds, numberOfSignificantValueDigits: .three)
    /// Values recorded as the maximum because they were larger (or negative: clock steps).
    public private(set) var clamped: UInt64 = 0

    /// An empty recorder.
    public init() {}

    /// Records a latency given in nanoseconds.
    @inline(__always)
    mutating func record(nanoseconds: Int64) {
        var micros = nanoseconds / 1000
        if micros < 0 {
            micros = 0
            clamped += 1
        }
        if UInt64(micros) > Self.highestMicroseconds {
            micros = Int64(Self.highestMicroseconds)
            clamped += 1
        }
        histogram.record(UInt64(micros))
    }

    /// Adds another recorder's values.
    public mutating func merge(_ other: LatencyRecorder) {
        histogram.add(other.histogram)
        clamped += other.clamped
    }

    /// The number of values recorded.
    public var count: UInt64 { histogram.totalCount }

    /// Percentiles and maximum, in milliseconds.
    public var summary: LatencySummary {
        guard count > 0 else { return LatencySummary(count: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0, maxMs: 0) }
        let maximum = histogram.maxRecorded
        // Percentiles are reported as the top of their bucket; never above the largest sample.
        func ms(_ micros: UInt64) -> Double { round3(Double(Swift.min(micros, maximum)) / 1000) }
        return LatencySummary(
            count: Int(count),
            p50Ms: ms(histogram.valueAtPercentile(50)),
            p90Ms: ms(histogram.valueAtPercentile(90)),
            p99Ms: ms(histogram.valueAtPercentile(99)),
            maxMs: ms(maximum))
    }
}

/// Latency percentiles in milliseconds, with the number of samples.
public struct LatencySummary: Sendable, Codable, Equatable {
    /// Number of samples.
    public var count: Int
    /// Median.
    public var p50Ms: Double
    /// 90th percentile.
    public var p90Ms: Double
    /// 99th percentile.
    public var p99Ms: Double
    /// Largest sample.
    public var maxMs: Double
}
