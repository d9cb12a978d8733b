import ArgumentParser
import Foundation

/// A command-line duration: `250ms`, `30s`, `5m`, `1h`, `2d`, or a bare number of seconds.
/// Fractions are allowed (`0.5`, `1.5h`); signs, exponents, spaces inside and other units are not.
struct DurationArgument: ExpressibleByArgument, Sendable {
    let duration: Duration

    init(duration: Duration) {
        self.duration = duration
    }

    init?(argument: String) {
        guard let duration = Self.parse(argument) else { return nil }
        self.duration = duration
    }

    /// Longest accepted duration, in seconds (about 31,700 years), so conversions cannot overflow.
    private static let maximumSeconds = 1e12

    /// Units by suffix; "ms" comes before "m" and "s" so it is matched first.
    private static let units: [(suffix: String, seconds: Double)] = [
        ("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400),
    ]

    /// Parses `text` as described on the type, or returns `nil` for anything else, negatives included.
    static func parse(_ text: String) -> Duration? {
        let text = text.trimmingCharacters(in: .whitespacesAndNewlines)
        var number = Substring(text)
        var unitSeconds: Double = 1
        if let unit = units.first(where: { text.hasSuffix($0.suffix) }) {
            number = number.dropLast(unit.suffix.count)
            unitSeconds = unit.seconds
        }
        guard isPlainDecimal(number), let value = Double(number) else { return nil }
        let seconds = value * unitSeconds
        guard seconds.isFinite, seconds <= maximumSeconds else { return nil }
        if unitSeconds == 0.001, let milliseconds = Int64(number) {
            return .milliseconds(milliseconds)
        }
        if let whole = Int64(number) {
            return .seconds(whole * Int64(unitSeconds))
        }
        return .seconds(seconds)
    }

    /// Digits with at most one decimal point and at least one digit: no sign, exponent, `inf` or `nan`.
    private static func isPlainDecimal(_ text: Substring) -> Bool {
        var digits = 0
        var points = 0
        for character in text {
            if character == "." {
                points += 1
            } else if character.isASCII, character.isNumber {
                digits += 1
            } else {
                return false
            }
        }
        return digits > 0 && points <= 1
    }

    /// The duration in the largest unit that states it exactly, e.g. "1h" for the default TTL.
    var defaultValueDescription: String {
        let (seconds, attoseconds) = duration.components
        guard attoseconds == 0 else { return "\(seconds * 1000 + attoseconds / 1_000_000_000_000_000)ms" }
        for (suffix, unit) in [("d", Int64(86400)), ("h", 3600), ("m", 60)] where seconds != 0 && seconds % unit == 0 {
            return "\(seconds / unit)\(suffix)"
        }
        return "\(seconds)s"
    }
}
