import Atomics
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle

/// The embedded broker: every room's position and history in this process's memory, for one node.
///
/// Rooms are spread over shards, each with its own lock, so rooms in different shards never wait
/// on each other; a publish assigns the position, keeps the frame and delivers it under its shard's
/// lock, which is what keeps one room's events in order. History is bounded by age
/// (``HistoryConfiguration/retention``, counted from each event's own publication), by count per
/// room and by bytes in all. A room's stream (its epoch and offset) outlives its members for the
/// retention period; the epoch changes only when the history is really gone (the stream was
/// dropped after retention, or the process restarted).
///
/// Expired events are dropped when their room is next used; idle rooms are swept a shard at a time
/// as the broker is used (every shard once a tenth of the retention period, at most a minute), and
/// by ``removeExpired()``, which ``run()`` calls periodically when the broker runs as a `Service`
/// (the standalone server does; an app need not, but then a broker with no traffic at all keeps
/// what it holds until its next use). Time comes from `clock`, so tests move it instead of waiting.
public final class InMemoryBroker: SynchronousBroker, Service {
    public let configuration: HistoryConfiguration
    /// Time since the broker was created, on its clock. Kept as a closure rather than a generic
    /// parameter: the types on the publish path stay non-generic, so they need no metadata look-up
    /// at run time.
    private let now: @Sendable () -> Duration
    private let sleep: @Sendable (Duration) async throws -> Void
    private let shards: [NIOLockedValueBox<[String: RoomStream]>]
    private let subscriber = ManagedAtomicLazyReference<SubscriberBox>()
    /// Bytes held by every room's history: frames plus ``entryOverhead`` each.
    private let heldBytes = ManagedAtomic<Int>(0)
    private let trimming = ManagedAtomic<Bool>(false)
    /// Expiry spread over publishes and subscriptions, so that an app that never runs the broker as
    /// a service still drops what has expired.
    private let sweep: ShardSweep

    /// What one kept event costs besides its frame's bytes: the entry in the room's ring, the
    /// array's header and the allocator's rounding. Counted so that the memory bound holds for
    /// small events too.
    static var entryOverhead: Int { 80 }

    private final class SubscriberBox: Sendable {
        let subscriber: any BrokerSubscriber
        init(_ subscriber: any BrokerSubscriber) { self.subscriber = subscriber }
    }

    typealias Entry = InMemoryHistoryEntry
    typealias RoomStream = InMemoryRoomStream

    /// Creates a broker with `configuration`'s bounds, telling time by `clock`.
    public init<C: Clock & Sendable>(configuration: HistoryConfiguration = .init(), clock: C) where C.Duration == Duration {
        self.configuration = configuration
        let start = clock.now
        self.now = { start.duration(to: clock.now) }
        self.sleep = { try await clock.sleep(for: $0) }
        self.shards = (0..<64).map { _ in NIOLockedValueBox([:]) }
        self.sweep = ShardSweep(period: configuration.retention, shardCount: 64)
    }

    /// A broker on the system's monotonic clock.
    public convenience init(configuration: HistoryConfiguration = .init()) {
        self.init(configuration: configuration, clock: ContinuousClock())
    }

    private func shard(of room: String) -> NIOLockedValueBox<[String: RoomStream]> {
        var hasher = Hasher()
        hasher.combine(room)
        return shards[Int(UInt(bitPattern: hasher.finalize()) % UInt(shards.count))]
    }

    // MARK: Broker

    public func attach(_ subscriber: any BrokerSubscriber) {
        _ = self.subscriber.storeIfNilThenLoad(SubscriberBox(subscriber))
    }

    public func subscribe(_ room: String, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let now = self.now()
        shard(of: room).withLockedValue { rooms in
            var stream = rooms.removeValue(forKey: room) ?? RoomStream(epoch: Self.makeEpoch(), touchedAt: now)
            stream.subscribed = true
            rooms[room] = stream
        }
        sweepIfDue(at: now)
        return eventLoop.makeSucceededVoidFuture()
    }

    public func unsubscribe(_ room: String) {
        let now = self.now()
        shard(of: room).withLockedValue { rooms in
            rooms[room]?.subscribed = false
            rooms[room]?.touchedAt = now
        }
    }

    public func publish(_ publication: Publication, on eventLoop: any EventLoop) -> EventLoopFuture<EventID?> {
        eventLoop.makeSucceededFuture(publishNow(publication))
    }

    /// ``publish(_:on:)`` without a future: the position, once the event has been delivered.
    @discardableResult
    public func publishNow(_ publication: Publication) -> EventID? {
        let subscriber = self.subscriber.load()?.subscriber
        guard publication.persistent else {
            let frame = publication.frame(at: nil)
            subscriber?.deliver(BrokerEvent(room: publication.room, position: nil, frame: frame, origin: publication.origin))
            return nil
        }
        let now = self.now()
        let retention = configuration.retention
        let maxEvents = max(configuration.maxEventsPerRoom, 0)
        var added = 0
        let position = shard(of: publication.room).withLockedValue { rooms -> EventID in
            // Mutated in place through the default subscript: one lookup, no copy of the ring.
            Self.append(
                publication, to: &rooms[publication.room, default: RoomStream(epoch: Self.makeEpoch(), touchedAt: now)],
                now: now, retention: retention, maxEvents: maxEvents, added: &added, subscriber: subscriber)
        }
        let total = heldBytes.wrappingIncrementThenLoad(by: added, ordering: .relaxed)
        if total > configuration.maxBytes {
            trimToBudget()
        }
        sweepIfDue(at: now)
        return position
    }

    /// Under the shard's lock: the next position, the frame, history, delivery.
    private static func append(
        _ publication: Publication,
        to stream: inout RoomStream,
        now: Duration,
        retention: Duration,
        maxEvents: Int,
        added: inout Int,
        subscriber: (any BrokerSubscriber)?
    ) -> EventID {
        added -= dropExpired(from: &stream, before: now - retention)
        stream.lastOffset += 1
        stream.touchedAt = now
        let position = stream.position
        let frame = publication.frame(at: position)
        if maxEvents > 0 {
            // A copy of exactly the frame's size: NIO gives every buffer a power-of-two capacity,
            // up to twice the bytes, which history would keep for the whole retention period.
            let entry = Entry(offset: stream.lastOffset, frame: frame.withUnsafeReadableBytes { Array($0) }, publishedAt: now)
            stream.entries.append(entry)
            added += entry.cost
            while stream.entries.count > maxEvents {
                added -= stream.entries.removeFirst().cost
            }
        }
        // Delivered under the shard's lock: the next event of this room waits for it, which is
        // what keeps every node's view of the room in position order.
        subscriber?.deliver(BrokerEvent(room: publication.room, position: position, frame: frame, origin: publication.origin))
        return position
    }

    public func recover(_ room: String, after position: EventID?, limit: Int, on eventLoop: any EventLoop) -> EventLoopFuture<Recovery> {
        eventLoop.makeSucceededFuture(recoverNow(room, after: position, limit: limit))
    }

    /// ``recover(_:after:limit:on:)`` without a future.
    public func recoverNow(_ room: String, after position: EventID?, limit: Int) -> Recovery {
        let now = self.now()
        let cutoff = now - configuration.retention
        var dropped = 0
        let recovery = shard(of: room).withLockedValue { rooms -> Recovery in
            var stream = rooms.removeValue(forKey: room) ?? RoomStream(epoch: Self.makeEpoch(), touchedAt: now)
            dropped = Self.dropExpired(from: &stream, before: cutoff)
            defer { rooms[room] = stream }
            return Self.recovery(from: stream, after: position, limit: limit)
        }
        if dropped > 0 { heldBytes.wrappingDecrement(by: dropped, ordering: .relaxed) }
        return recovery
    }

    static func recovery(from stream: RoomStream, after position: EventID?, limit: Int) -> Recovery {
        let current = stream.position
        guard let position else { return .recovered(current: current, events: []) }
        guard position.epoch == stream.epoch, position.offset <= stream.lastOffset else {
            return .notRecoverable(current: current)
        }
        let missing = stream.lastOffset - position.offset
        if missing == 0 { return .recovered(current: current, events: []) }
        guard missing <= UInt64(max(limit, 0)), let first = stream.entries.first, first.offset <= position.offset + 1 else {
            return .notRecoverable(current: current)
        }
        // Offsets in the ring are consecutive, so the first event wanted is at a known index.
        let start = stream.entries.index(stream.entries.startIndex, offsetBy: Int(position.offset + 1 - first.offset))
        var events: [HistoryEntry] = []
        events.reserveCapacity(Int(missing))
        for entry in stream.entries[start...] {
            events.append(entry.historyEntry(epoch: stream.epoch))
        }
        return .recovered(current: current, events: events)
    }

    public func latest(_ room: String, limit: Int, on eventLoop: any EventLoop) -> EventLoopFuture<[HistoryEntry]> {
        eventLoop.makeSucceededFuture(latestNow(room, limit: limit))
    }

    /// ``latest(_:limit:on:)`` without a future.
    public func latestNow(_ room: String, limit: Int) -> [HistoryEntry] {
        let cutoff = now() - configuration.retention
        return shard(of: room).withLockedValue { rooms -> [HistoryEntry] in
            guard let stream = rooms[room] else { return [] }
            let kept = stream.entries.filter { $0.publishedAt > cutoff }
            return kept.suffix(max(limit, 0)).map { $0.historyEntry(epoch: stream.epoch) }
        }
    }

    // MARK: Retention

    /// Bytes held by history now (frames plus bookkeeping), for tests and metrics.
    public var historyBytes: Int { heldBytes.load(ordering: .relaxed) }

    /// Rooms with a stream (members, history, or a recent position), for tests and metrics.
    public var streamCount: Int { shards.reduce(0) { $0 + $1.withLockedValue { $0.count } } }

    /// Drops every event older than the retention period, and the streams of rooms that have no
    /// subscriber, no history and have not been used for that long (their epoch goes with them).
    /// The broker also does this itself, a shard at a time, as it is used (see ``ShardSweep``).
    public func removeExpired() {
        for index in shards.indices { removeExpired(inShard: index) }
    }

    private func removeExpired(inShard index: Int) {
        let now = self.now()
        let cutoff = now - configuration.retention
        var dropped = 0
        shards[index].withLockedValue { rooms in
            for name in Array(rooms.keys) {
                guard var stream = rooms.removeValue(forKey: name) else { continue }
                dropped += Self.dropExpired(from: &stream, before: cutoff)
                if stream.subscribed || !stream.entries.isEmpty || stream.touchedAt > cutoff {
                    rooms[name] = stream
                }
            }
        }
        if dropped > 0 { heldBytes.wrappingDecrement(by: dropped, ordering: .relaxed) }
    }

    /// Sweeps a shard when its turn has come; called after an operation, outside any shard lock.
    private func sweepIfDue(at now: Duration) {
        if let index = sweep.due(at: now) { removeExpired(inShard: index) }
    }

    /// Drops the events of `stream` published at or before `cutoff`; returns the bytes freed.
    private static func dropExpired(from stream: inout RoomStream, before cutoff: Duration) -> Int {
        var freed = 0
        while let first = stream.entries.first, first.publishedAt <= cutoff {
            freed += stream.entries.removeFirst().cost
        }
        return freed
    }

    /// Over the byte budget: drops the oldest events, taken from the rooms whose oldest event is
    /// oldest, until history is back under 90 % of the budget. One trim at a time; publishes that
    /// find one running go on (the budget is a bound to return to, not a wall).
    private func trimToBudget() {
        guard trimming.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return }
        defer { trimming.store(false, ordering: .releasing) }
        let target = configuration.maxBytes - configuration.maxBytes / 10
        while heldBytes.load(ordering: .relaxed) > target {
            // One pass over the shards for every room's oldest event, then the rooms oldest first.
            var rooms: [(shard: Int, room: String, at: Duration)] = []
            for (index, shard) in shards.enumerated() {
                shard.withLockedValue { streams in
                    for (name, stream) in streams {
                        if let first = stream.entries.first { rooms.append((index, name, first.publishedAt)) }
                    }
                }
            }
            guard !rooms.isEmpty else { return }
            rooms.sort { $0.at < $1.at }
            for victim in rooms {
                let excess = heldBytes.load(ordering: .relaxed) - target
                guard excess > 0 else { return }
                let freed = shards[victim.shard].withLockedValue { streams -> Int in
                    guard var stream = streams.removeValue(forKey: victim.room) else { return 0 }
                    defer { streams[victim.room] = stream }
                    // At most half of a room at a time, so that every room keeps its newest events
                    // while older rooms have some to give.
                    var freed = 0
                    var budget = max(1, stream.entries.count / 2)
                    while freed < excess, budget > 0, let entry = stream.entries.popFirst() {
                        freed += entry.cost
                        budget -= 1
                    }
                    return freed
                }
                heldBytes.wrappingDecrement(by: freed, ordering: .relaxed)
            }
        }
    }

    /// Runs ``removeExpired()`` every tenth of the retention period (at least every second, at
    /// most every minute) until cancelled or the service group shuts down.
    public func run() async throws {
        await ExpirySweep.run(period: configuration.retention, sleep: sleep) { self.removeExpired() }
    }

    /// A new epoch: the creation time in milliseconds plus randomness, base 36, so epochs of one
    /// room name differ across restarts and re-creations.
    static func makeEpoch() -> String { EventID.newEpoch() }
}

/// One kept event of the in-memory broker.
struct InMemoryHistoryEntry {
    let offset: UInt64
    /// The frame's bytes, at their exact size.
    let frame: [UInt8]
    /// When it was published, as time since the broker was created.
    let publishedAt: Duration
    var cost: Int { frame.count + InMemoryBroker.entryOverhead }

    /// The entry as the ``Broker`` protocol hands it out: the same bytes, in a buffer of their own.
    func historyEntry(epoch: String) -> HistoryEntry {
        HistoryEntry(position: EventID(epoch: epoch, offset: offset), frame: ByteBuffer(bytes: frame))
    }
}

/// One room's stream in the in-memory broker.
struct InMemoryRoomStream {
    let epoch: String
    var lastOffset: UInt64 = 0
    var entries = CircularBuffer<InMemoryHistoryEntry>()
    var subscribed = false
    /// When it was last published to or unsubscribed: an unused, empty stream is dropped once this
    /// is older than the retention period.
    var touchedAt: Duration

    init(epoch: String, touchedAt: Duration) {
        self.epoch = epoch
        self.touchedAt = touchedAt
    }

    var position: EventID { EventID(epoch: epoch, offset: lastOffset) }
}
