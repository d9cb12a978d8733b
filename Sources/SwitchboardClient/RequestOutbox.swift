/// The requests that have not been answered yet, in the order they were made: written on the
/// current connection, or waiting for one (the offline queue). After a reconnect every one of them
/// is written again, in order, with its original id (the server's idempotency makes a retry safe).
///
/// Generic over what waits for the answer, so that the bounds are unit-tested without a client.
struct RequestOutbox<Waiter> {
    struct Entry {
        let id: String
        /// The envelope's text, written again as it is.
        let text: String
        /// What the reply means to the client's own state.
        let kind: RequestKind
        let deadline: ContinuousClock.Instant
        let waiter: Waiter
        var written: Bool
        let sequence: Int
        /// When to write it again, after the server refused it with `rate_limited`.
        var retryAt: ContinuousClock.Instant? = nil
    }

    /// At most this many requests wait while the client is not connected.
    let limit: Int
    private var entries: [String: Entry] = [:]
    private var nextSequence = 0

    init(limit: Int) {
        self.limit = max(limit, 1)
    }

    var count: Int { entries.count }
    var isEmpty: Bool { entries.isEmpty }

    func contains(_ id: String) -> Bool { entries[id] != nil }

    /// Adds a request. While offline (`online == false`) the outbox holds at most `limit`: the
    /// oldest requests beyond it are returned, given up. Online, the server's backpressure bounds it.
    mutating func add(id: String, text: String, kind: RequestKind, deadline: ContinuousClock.Instant, waiter: Waiter, online: Bool) -> [Entry] {
        var dropped: [Entry] = []
        if !online {
            while entries.count >= limit, let oldest = ordered.first {
                entries[oldest.id] = nil
                dropped.append(oldest)
            }
        }
        entries[id] = Entry(id: id, text: text, kind: kind, deadline: deadline, waiter: waiter, written: online, sequence: nextSequence)
        nextSequence += 1
        return dropped
    }

    /// Removes and returns the request `id` (its reply arrived, it timed out, it was cancelled).
    mutating func remove(_ id: String) -> Entry? {
        entries.removeValue(forKey: id)
    }

    /// Every request, oldest first.
    var ordered: [Entry] {
        entries.values.sorted { $0.sequence < $1.sequence }
    }

    /// The connection dropped: every request is to be written again.
    mutating func markAllUnwritten() {
        for id in entries.keys {
            entries[id]?.written = false
            entries[id]?.retryAt = nil
        }
    }

    /// The requests to write on a new connection, oldest first; marks them written.
    mutating func takeUnwritten() -> [Entry] {
        let pending = ordered.filter { !$0.written }
        for entry in pending { entries[entry.id]?.written = true }
        return pending
    }

    /// Removes and returns the requests whose deadline is at or before `now`.
    mutating func expire(now: ContinuousClock.Instant) -> [Entry] {
        let expired = ordered.filter { $0.deadline <= now }
        for entry in expired { entries[entry.id] = nil }
        return expired
    }

    /// The server refused request `id` for now (`rate_limited`): it is written again at `time`,
    /// unless that is past its deadline. `false`: not waiting (unknown, or too late to retry).
    mutating func retry(_ id: String, at time: ContinuousClock.Instant) -> Bool {
        guard let entry = entries[id], time < entry.deadline else { return false }
        entries[id]?.retryAt = time
        return true
    }

    /// The requests due to be written again at `now`, oldest first; their retry time is cleared.
    mutating func takeDueRetries(now: ContinuousClock.Instant) -> [Entry] {
        let due = ordered.filter { $0.retryAt.map { $0 <= now } ?? false }
        for entry in due { entries[entry.id]?.retryAt = nil }
        return due
    }

    /// The earliest retry time.
    var nextRetry: ContinuousClock.Instant? {
        entries.values.compactMap(\.retryAt).min()
    }

    /// The earliest deadline.
    var nextDeadline: ContinuousClock.Instant? {
        entries.values.map(\.deadline).min()
    }

    /// Removes and returns every request.
    mutating func removeAll() -> [Entry] {
        let all = ordered
        entries = [:]
        return all
    }
}

/// What a request's reply means to the client's own state.
enum RequestKind: Sendable, Equatable {
    /// An app event; `room` is its data's `room`, if any: an `eid` in the ack is the client's own
    /// event in that room, and counts as seen.
    case event(room: String?)
    /// `room.join`: the ack's `eid` is the room's position.
    case join(String)
    /// `room.leave`: the client is no longer in the room.
    case leave(String)
    /// A request that changes nothing on the client (`room.members`).
    case query
}
