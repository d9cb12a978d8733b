import NIOConcurrencyHelpers

/// Counts each user's open connections against a limit.
final class UserConnectionLimiter: Sendable {
    private let limit: Int
    private let counts = NIOLockedValueBox<[String: Int]>([:])

    init(limit: Int) {
        self.limit = limit
    }

    /// Takes a slot for `user`; `false` when the user already holds `limit` connections.
    func acquire(_ user: String) -> Bool {
        counts.withLockedValue { counts in
            let current = counts[user, default: 0]
            guard current < limit else { return false }
            counts[user] = current + 1
            return true
        }
    }

    func release(_ user: String) {
        counts.withLockedValue { counts in
            let remaining = counts[user, default: 0] - 1
            counts[user] = remaining > 0 ? remaining : nil
        }
    }

    func count(of user: String) -> Int {
        counts.withLockedValue { $0[user, default: 0] }
    }
}
