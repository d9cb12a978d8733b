/// What one soak user has seen of its room, over all its connections: the positions it holds,
/// and how the server kept to "every event once, in order" (protocol 2.4, 2.5).
///
/// Unlike ``PositionTracker`` (a subscriber that never publishes), a soak user publishes too, and
/// its own events never reach it live: the `eid` of its ack counts as seen, and acks are not
/// ordered with the room's events. So the tracker keeps the highest position below which it has
/// seen everything (``base``, what it resumes from, as the protocol asks a client to do) and the
/// positions seen above it; a position still missing when the room has moved on is not counted
/// at once (the ack may be late), only at the end of the run, against the room's last position.
///
/// Raw duplicates are counted per connection: the server sends each connection a room's events in
/// `eid` order, from the position it resumed from, so an offset at or below the last one this
/// connection received (or at or below the position it resumed from) was sent twice. An event
/// the user saw on an earlier connection above the position it resumed from is replayed by design
/// (it resumed from below a hole); those are counted apart as ``replayedAgain``.
struct SoakTracker: Sendable {
    /// The room's epoch; `nil` until the first join.
    private(set) var epoch: [UInt8]?
    /// Every position up to this one was seen (or was the user's own, or came before its first join).
    private(set) var base: UInt64 = 0
    /// Positions above ``base`` already seen or acked to the user.
    private(set) var above: Set<UInt64> = []
    /// The position of the user's first join: events after it are expected.
    private(set) var firstPosition: UInt64?
    /// The last offset this connection received (starts at the position it joined or resumed from).
    private var connectionLast: UInt64 = 0
    /// Where this connection started (its join's or resume's position), and the room events it got.
    private var connectionStart: UInt64 = 0
    private var connectionReceived = 0
    private var connectionResumed = false
    /// The first raw duplicate, described (where it came in its connection's stream).
    private(set) var firstDuplicate: String?

    /// Room events received (`message.new` and app events with an `eid`).
    private(set) var received = 0
    /// Room events this connection had already been sent (at or below its last, or its resume position).
    private(set) var rawDuplicates = 0
    /// Events above the resume position seen on an earlier connection (replayed by design).
    private(set) var replayedAgain = 0
    /// Epoch changes (the room's history was lost).
    private(set) var epochChanges = 0
    /// `state.refresh` received (the resume could not be proven).
    private(set) var refreshes = 0

    init() {}

    /// Whether the user has joined its room once (it then resumes).
    var hasJoined: Bool { epoch != nil }

    /// A `room.join` ack at `position`: the user's first, or (after a lost position) a fresh start.
    mutating func joined(at position: RoomPosition) {
        if let epoch, epoch != position.epoch { epochChanges += 1 }
        if epoch == nil || epoch != position.epoch {
            epoch = position.epoch
            base = position.offset
            above = []
            firstPosition = position.offset
        }
        connectionLast = position.offset
        startConnection(at: position.offset, resumed: false)
    }

    /// A new connection resuming from ``base``: its stream starts after it.
    mutating func resumed() {
        connectionLast = base
        startConnection(at: base, resumed: true)
    }

    private mutating func startConnection(at offset: UInt64, resumed: Bool) {
        connectionStart = offset
        connectionReceived = 0
        connectionResumed = resumed
    }

    /// A room event at `epoch`:`offset` arrived on the current connection.
    mutating func observe(epoch eventEpoch: UnsafeRawBufferPointer, offset: UInt64) {
        received += 1
        connectionReceived += 1
        guard let epoch else { return }
        if !epoch.elementsEqual(eventEpoch) {
            epochChanges += 1
            self.epoch = Array(eventEpoch)
            base = offset
            above = []
            connectionLast = offset
            return
        }
        if offset <= connectionLast {
            rawDuplicates += 1
            if firstDuplicate == nil {
                firstDuplicate = "offset \(offset) after \(connectionLast), room event #\(connectionReceived) of a connection that "
                    + (connectionResumed ? "resumed from" : "joined at") + " \(connectionStart)"
            }
            return
        }
        connectionLast = offset
        if offset <= base || above.contains(offset) {
            replayedAgain += 1
            return
        }
        above.insert(offset)
        advance()
    }

    /// The ack of the user's own `message.send` at `position`: counts as seen.
    mutating func ownAck(_ position: RoomPosition) {
        guard let epoch, epoch == position.epoch, position.offset > base else { return }
        above.insert(position.offset)
        advance()
    }

    /// A `state.refresh` at `epoch`:`offset`: the room's state is replaced from there.
    mutating func refresh(epoch eventEpoch: UnsafeRawBufferPointer, offset: UInt64) {
        refreshes += 1
        epoch = Array(eventEpoch)
        base = offset
        above = []
        connectionLast = offset
    }

    /// Whether every position up to `target` (same epoch) has been seen.
    func hasSeen(through target: RoomPosition) -> Bool {
        epoch == target.epoch && base >= target.offset
    }

    /// Whether the event at `offset` was seen (or was the user's own).
    func hasSeen(offset: UInt64) -> Bool {
        offset <= base || above.contains(offset)
    }

    /// Positions after the first join and up to `target` that never arrived.
    func missing(through target: UInt64) -> Int {
        guard target > base else { return 0 }
        return Int(target - base) - above.filter { $0 <= target }.count
    }

    private mutating func advance() {
        while above.remove(base + 1) != nil { base += 1 }
    }
}
