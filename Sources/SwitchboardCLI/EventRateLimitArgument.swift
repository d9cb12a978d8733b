import Foundation
import ArgumentParser
import Switchboard

/// A command-line limit of one client event per connection: `EVENT=RATE/BURST` or `EVENT=off`
/// (see ``RateLimitArgument``); `*` names every event not named otherwise.
struct EventRateLimitArgument: ExpressibleByArgument, Sendable, Equatable {
    /// The event name, or `*`.
    let event: String
    /// `nil` for `off`: the event is not limited.
    let limit: RateLimit?

    init?(argument: String) {
        guard let equals = argument.lastIndex(of: "=") else { return nil }
        let event = argument[..<equals].trimmingCharacters(in: .whitespaces)
        guard !event.isEmpty, let limit = RateLimitArgument(argument: String(argument[argument.index(after: equals)...])) else { return nil }
        self.event = event
        self.limit = limit.limit
    }

    /// Applies this limit to `limits`.
    func apply(to limits: inout RateLimits) {
        if event == "*" {
            limits.otherEvents = limit
        } else if let limit {
            limits.events[event] = limit
            limits.exemptEvents.remove(event)
        } else {
            // Exempt rather than unnamed: an unnamed event would fall under `*`.
            limits.events[event] = nil
            limits.exemptEvents.insert(event)
        }
    }
}
