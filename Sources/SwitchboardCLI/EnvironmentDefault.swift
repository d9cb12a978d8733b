import Foundation

/// Defaults read from `SWITCHBOARD_*` environment variables, so every option can also be set there.
enum EnvironmentDefault {
    static func string(_ name: String) -> String? {
        ProcessInfo.processInfo.environment[name].flatMap { $0.isEmpty ? nil : $0 }
    }

    static func string(_ name: String, _ fallback: String) -> String {
        string(name) ?? fallback
    }

    static func int(_ name: String, _ fallback: Int) -> Int {
        string(name).flatMap(Int.init) ?? fallback
    }

    static func duration(_ name: String, _ fallback: String) -> DurationArgument {
        let text = string(name) ?? fallback
        return DurationArgument(argument: text) ?? DurationArgument(argument: fallback)!
    }

    static func bool(_ name: String, _ fallback: Bool) -> Bool {
        switch string(name)?.lowercased() {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default: return fallback
        }
    }

    static func rateLimit(_ name: String, _ fallback: String) -> RateLimitArgument {
        string(name).flatMap(RateLimitArgument.init(argument:)) ?? RateLimitArgument(argument: fallback)!
    }

    static func abuseLimit(_ name: String, _ fallback: String) -> AbuseLimitArgument {
        string(name).flatMap(AbuseLimitArgument.init(argument:)) ?? AbuseLimitArgument(argument: fallback)!
    }

    static func list(_ name: String) -> [String] {
        string(name).map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } } ?? []
    }
}
