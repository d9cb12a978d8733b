import Foundation

/// Reads samples out of Prometheus' text format, for the tests of `/metrics`.
struct PrometheusText {
    let text: String

    /// The value of the sample `series` (a metric name, with its labels as written, e.g.
    /// `switchboard_closes_total{code="1000"}`); `nil` when there is no such line.
    func value(_ series: String) -> Double? {
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), line[..<space] == series else { continue }
            return Double(line[line.index(after: space)...])
        }
        return nil
    }

    /// The metric names that have a `# TYPE` line.
    var typed: [String: String] {
        var types: [String: String] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("# TYPE ") {
            let parts = line.split(separator: " ")
            if parts.count == 4 { types[String(parts[2])] = String(parts[3]) }
        }
        return types
    }
}
