/// A room position as the server writes it in `eid`: `<epoch>:<offset>` (protocol 2.4).
struct RoomPosition: Sendable, Equatable, CustomStringConvertible {
    /// The epoch's bytes (letters and digits), compared byte for byte, never decoded per event.
    var epoch: [UInt8]
    var offset: UInt64

    /// `<epoch>:<offset>`, as `session.hello`'s `resume` takes it.
    var description: String { String(decoding: epoch, as: UTF8.self) + ":" + String(offset) }
}

/// What one subscriber has seen of one room: the last position, and how the positions it saw
/// held to "every event of the room once, offsets increasing by exactly one".
///
/// It lives in the subscriber's ``BenchClientHandler`` (on its event loop) and is carried over
/// to the connection that resumes; ``observe(epoch:offset:isMessage:)`` runs once per room event.
struct PositionTracker: Sendable {
    /// The last position seen (or acknowledged by a join); `nil` until the join's ack.
    private(set) var position: RoomPosition?
    /// Room events at or before ``position`` (seen twice).
    private(set) var duplicates = 0
    /// Jumps past `position.offset + 1`, and changes of epoch (the history before them is lost).
    private(set) var gaps = 0
    /// `message.new` events of the room since the tracker was made or resumed.
    private(set) var messages = 0
    /// `state.refresh` envelopes received: the position was reset to theirs.
    private(set) var refreshes = 0

    init() {}

    /// The tracker of a resuming connection: the same position and duplicate and gap counts,
    /// messages counted from zero.
    init(resuming previous: PositionTracker) {
        position = previous.position
        duplicates = previous.duplicates
        gaps = previous.gaps
    }

    /// Starts from `position` (a join's ack: events after it follow).
    mutating func start(at position: RoomPosition) {
        self.position = position
    }

    /// Records a room event at `epoch`:`offset`; before ``start(at:)`` only counts messages.
    mutating func observe(epoch: UnsafeRawBufferPointer, offset: UInt64, isMessage: Bool) {
        if isMessage { messages += 1 }
        guard var last = position else { return }
        if !last.epoch.elementsEqual(epoch) {
            gaps += 1
            last.epoch = Array(epoch)
        } else if offset <= last.offset {
            duplicates += 1
            return
        } else if offset > last.offset + 1 {
            gaps += 1
        }
        last.offset = offset
        position = last
    }

    /// A `state.refresh` at `epoch`:`offset`: the room's state is replaced, so the position is
    /// taken as is (neither a gap nor a duplicate).
    mutating func refresh(epoch: UnsafeRawBufferPointer, offset: UInt64) {
        refreshes += 1
        position = RoomPosition(epoch: Array(epoch), offset: offset)
    }

    /// Whether the room event at `target` (same epoch) has been seen.
    func hasReached(_ target: RoomPosition) -> Bool {
        guard let position else { return false }
        return position.epoch == target.epoch && position.offset >= target.offset
    }
}

extension RoomPosition {
    /// The first `eid` of an envelope (see ``MessageScanner/eventID(in:)``), e.g. of an ack.
    init?(firstIn payload: UnsafeRawBufferPointer) {
        guard let id = MessageScanner.eventID(in: payload) else { return nil }
        self.init(epoch: Array(payload[id.epoch]), offset: id.offset)
    }

    /// The first `eid` of a whole envelope's bytes.
    init?(firstIn payload: [UInt8]) {
        guard let position = payload.withUnsafeBytes({ RoomPosition(firstIn: $0) }) else { return nil }
        self = position
    }
}

/// When a resuming connection sent its `session.hello` and when it had received the event it
/// had to reach, in unix nanoseconds (comparable across event loops).
struct CatchUp: Sendable, Equatable {
    var helloSentAtNanos: Int64
    var caughtUpAtNanos: Int64

    /// From the hello to the event.
    var nanoseconds: Int64 { caughtUpAtNanos - helloSentAtNanos }
}
