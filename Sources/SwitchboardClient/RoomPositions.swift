/// The client's position in each room it is in (protocol 2.5): the last `eid` received, from the
/// join ack, room events and the acks of its own publishes, whichever is latest. Decides which
/// events are new and which were already seen (dedupe by offset within an epoch).
///
/// A value type with no I/O, so that the rules are unit-tested on their own.
struct RoomPositions: Sendable {
    /// What to do with a room event that has an `eid`.
    enum Verdict: Equatable {
        /// New: deliver it (the position has already moved past it).
        case deliver
        /// Already seen in this epoch: drop it.
        case duplicate
        /// Of another epoch than the client's position: deliver it after a refresh of the room.
        case newEpoch
    }

    private struct Room {
        var position: EventPosition?
        /// Offsets above `position + 1` already known as seen: the acks of the client's own
        /// events, which may come before the events just before them.
        var seenAhead: Set<Int> = []
    }

    private var rooms: [String: Room] = [:]

    /// The rooms the client is in, with or without a position.
    var joined: [String] { rooms.keys.sorted() }

    func contains(_ room: String) -> Bool { rooms[room] != nil }

    func position(of room: String) -> EventPosition? { rooms[room]?.position }

    /// The positions to resume from, for `session.hello`'s `resume`.
    var resume: [String: EventPosition] {
        rooms.compactMapValues(\.position)
    }

    /// The client is in `room` from `position` on (a join ack, a hello ack, a `state.refresh`):
    /// replaces what it knew of the room.
    mutating func reset(_ room: String, to position: EventPosition?) {
        rooms[room] = Room(position: position)
    }

    /// The client is in `room`; keeps the position it has, if any.
    mutating func insert(_ room: String, position: EventPosition?) {
        if rooms[room] == nil { rooms[room] = Room(position: position) }
    }

    mutating func remove(_ room: String) {
        rooms[room] = nil
    }

    mutating func removeAll() {
        rooms = [:]
    }

    /// A room event with `eid` arrived: moves the position first, then says what to do with it.
    /// Every event with an `eid` is a position (protocol 2.4); events without one (ephemeral
    /// events: `typing.start`, and presence announcements where the server makes them ephemeral)
    /// never come here.
    mutating func receive(_ room: String, _ eid: EventPosition) -> Verdict {
        var state = rooms[room] ?? Room()
        defer { rooms[room] = state }
        guard let position = state.position else {
            state.position = eid
            return .deliver
        }
        guard position.epoch == eid.epoch else {
            state = Room(position: eid)
            return .newEpoch
        }
        if eid.offset <= position.offset { return .duplicate }
        if state.seenAhead.contains(eid.offset) {
            // One of the client's own events, replayed: it counts as seen.
            state.seenAhead.remove(eid.offset)
            advance(&state, to: eid)
            return .duplicate
        }
        advance(&state, to: eid)
        return .deliver
    }

    /// The ack of the client's own publish to `room` carried `eid`: it counts as seen.
    mutating func acknowledged(_ room: String, _ eid: EventPosition) {
        guard var state = rooms[room] else { return }
        defer { rooms[room] = state }
        guard let position = state.position, position.epoch == eid.epoch else {
            // No position yet, or another epoch: the events of that epoch will say.
            if state.position == nil { state.position = eid }
            return
        }
        if eid.offset == position.offset + 1 {
            advance(&state, to: eid)
        } else if eid.offset > position.offset + 1 {
            state.seenAhead.insert(eid.offset)
        }
    }

    /// Moves to `eid`, then over the offsets already seen just after it.
    private func advance(_ state: inout Room, to eid: EventPosition) {
        var offset = eid.offset
        state.seenAhead = state.seenAhead.filter { $0 > offset }
        while state.seenAhead.remove(offset + 1) != nil { offset += 1 }
        state.position = EventPosition(epoch: eid.epoch, offset: offset)
    }
}
