import Foundation
import ArgumentParser
import Switchboard

/// A command-line rate limit: `RATE/BURST` (`20/40`: 20 per second on average, 40 at once; the
/// rate may have a fraction, `0.5/5`), or `off`.
struct RateLimitArgument: ExpressibleByArgument, Sendable, Equatable {
    /// `nil` for `off`.
    let limit: RateLimit?

    init(limit: RateLimit?) {
        self.limit = limit
    }

    init?(argument: String) {
        let text = argument.trimmingCharacters(in: .whitespaces)
        if text == "off" {
            limit = nil
            return
        }
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let rate = Self.positiveNumber(parts[0]), rate <= 1e6,
            let burst = Int(parts[1]), (1...1_000_000).contains(burst)
        else { return nil }
        limit = RateLimit(perSecond: rate, burst: burst)
    }

    /// Digits with at most one decimal point, greater than zero: no sign, exponent, `inf` or `nan`.
    static func positiveNumber(_ text: Substring) -> Double? {
        guard !text.isEmpty, text.allSatisfy({ $0 == "." || ($0.isASCII && $0.isNumber) }), text.filter({ $0 == "." }).count <= 1,
            let value = Double(text), value > 0, value.isFinite
        else { return nil }
        return value
    }

    /// `20/40`, or `off`.
    var defaultValueDescription: String {
        guard let limit else { return "off" }
        let whole = limit.perSecond == limit.perSecond.rounded() && abs(limit.perSecond) < 1e15
        let rate = whole ? String(Int64(limit.perSecond)) : String(limit.perSecond)
        return "\(rate)/\(limit.burst)"
    }
}
