import Foundation
import ArgumentParser
import Switchboard

/// A command-line bound on limited events before a connection is closed: `N/DURATION` (`100/10s`:
/// up to 100 at once, forgiven at 100 per 10 s; see ``RateLimits/closeAfterLimited``), or `off`.
struct AbuseLimitArgument: ExpressibleByArgument, Sendable {
    /// `nil` for `off`.
    let limit: RateLimit?
    private let text: String

    init?(argument: String) {
        let text = argument.trimmingCharacters(in: .whitespaces)
        self.text = text
        if text == "off" {
            limit = nil
            return
        }
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let count = Int(parts[0]), (1...1_000_000).contains(count),
            let window = DurationArgument.parse(String(parts[1])), window > .zero
        else { return nil }
        let (seconds, attoseconds) = window.components
        let windowSeconds = Double(seconds) + Double(attoseconds) / 1e18
        limit = RateLimit(perSecond: Double(count) / windowSeconds, burst: count)
    }

    var defaultValueDescription: String { text }
}
