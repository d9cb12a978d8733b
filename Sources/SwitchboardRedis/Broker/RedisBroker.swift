import Atomics
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import Switchboard

/// A ``Broker`` on Redis, for several nodes behind one load balancer: each room's position and
/// history live in Redis, and every node receives the events of the rooms it has members in
/// through pub/sub.
///
/// - Publishing is one Lua script (``RedisBrokerScripts/publish``): it takes the room's next
///   offset, keeps the event in the room's history (a sorted set scored by offset, trimmed by each
///   event's own age and by count), refreshes the keys' expiry, and `PUBLISH`es the event with its
///   position. Every node therefore sees a room's events in offset order. When the room's keys are
///   gone (expired, flushed, Redis restarted without persistence) the script starts a new epoch, so
///   that clients resuming an older position get `state.refresh`, never a silent gap.
/// - A node subscribes a room's channel when its first local member joins and unsubscribes when
///   the last leaves (``subscribe(_:on:)`` completes once Redis confirmed it). An event from Redis
///   is framed once per node and handed to the ``BrokerSubscriber`` (the rooms layer), which fans
///   it out per event loop; the node that published it passes its origin along, so the sender is
///   skipped there and nowhere else.
/// - The pub/sub connection can drop. After it is back, the broker reads each subscribed room's
///   events after the last one it delivered from history and delivers those first; when history
///   no longer has them it tells the subscriber to resynchronize the room (its local members
///   reconnect and resume on their own).
/// - Pub/sub is at most once, so delivery is checked, not trusted (``RedisDeliveryChecks``):
///   when the pub/sub connection has been idle for a while, the node publishes a probe to a
///   channel of its own and expects it back; one that does not come back drops the connection
///   (the reconnect catches every room up) and makes the node not ready until a probe comes back
///   again. Now and then the node also compares each room's last delivered position with Redis's,
///   so that an event lost with no later event to reveal the gap is caught up too.
/// - A fault of Redis fails the futures (the server answers `unavailable`), never a silent
///   success.
///
/// Time for retention is the node's (``init(configuration:history:clock:logger:)`` takes a
/// clock), sent to the scripts in Unix milliseconds, so tests move a clock instead of waiting.
///
/// Run it as a `Service` (it runs its command pool and its pub/sub connection).
public final class RedisBroker: Broker, Service {
    /// The keys and channels of this broker start with this (default `"switchboard:"`).
    public let keyPrefix: String
    public let history: HistoryConfiguration
    /// The command pool (publish, recover, latest).
    public let client: RedisClient
    /// The pub/sub connection of this node.
    public let pubsub: RedisSubscriber
    /// How often delivery is checked.
    public let checks: RedisDeliveryChecks
    let logger: Logger
    private let time: NodeTime
    private let nowMilliseconds: @Sendable () -> Int64
    /// The end-to-end check of the pub/sub connection, on the node's own channel.
    private let pubsubProbe: RedisPubSubProbe
    /// This node's tag in published messages: events it published come back with it.
    let node: String
    /// Where user events from other nodes go (see `RedisBroker+UserEvents.swift`).
    let userEventReceiver = NIOLockedValueBox<(any UserEventReceiver)?>(nil)
    private let nextTag = ManagedAtomic<UInt64>(0)
    /// Origins of this node's publishes in flight, by tag, until their message comes back.
    private let origins = NIOLockedValueBox<[UInt64: PendingOrigin]>([:])
    /// Set once by `attach`; read per delivered event without a lock.
    private let subscriberReference = ManagedAtomicLazyReference<SubscriberReference>()

    private final class SubscriberReference: Sendable {
        let subscriber: any BrokerSubscriber
        init(_ subscriber: any BrokerSubscriber) { self.subscriber = subscriber }
    }

    private var subscriber: (any BrokerSubscriber)? { subscriberReference.load()?.subscriber }
    /// Confined to `pubsub.eventLoop`.
    private let rooms: NIOLoopBoundBox<[String: RoomSubscription]>
    private let roomsLoop: any EventLoop

    private struct PendingOrigin {
        let socket: Socket
        let since: Int64
    }

    /// One room's subscription on this node. Operations on Redis are serialized per room: one at a
    /// time, each decided by what is wanted when the previous one ends.
    private struct RoomSubscription {
        /// Whether the node has local members (the rooms layer subscribed it).
        var wanted = false
        /// Whether the pub/sub connection wants the channel (after any SUBSCRIBE, even a failed
        /// one: its next connection subscribes it) until an UNSUBSCRIBE.
        var active = false
        /// Whether Redis confirmed the subscription, so that the room's events reach the node.
        var confirmed = false
        var busy = false
        var waiters: [EventLoopPromise<Void>] = []
        /// The position of the last event delivered to the subscriber (from pub/sub or a catch-up).
        var last: EventID?
        /// The room's position read right after Redis confirmed the subscription: where a catch-up
        /// starts when no event has been delivered yet.
        var base: EventID?
        /// Set while the room catches up after the pub/sub connection was back: live events
        /// wait here, in order.
        var held: [(position: EventID?, event: BrokerEvent)]?
        /// Counts the room's catch-ups, so that a retry of one that was given up (the room was
        /// unsubscribed meanwhile) does not act on a later one.
        var catchUps: UInt64 = 0
    }

    /// - Parameters:
    ///   - configuration: the Redis server; `poolSize` command connections plus one for pub/sub.
    ///   - history: retention (by each event's own age), events kept per room. `maxBytes` does not
    ///     apply: Redis's own `maxmemory` does.
    ///   - keyPrefix: the start of every key and channel, to share a Redis with other apps.
    ///   - checks: how often delivery is checked (the probe of the pub/sub connection, the audit
    ///     of rooms' positions).
    ///   - clock: time for retention, and the intervals of the checks.
    /// Throws `RedisError.invalidConfiguration` for a configuration or checks that cannot work.
    public convenience init<C: Clock & Sendable>(
        configuration: RedisConfiguration,
        history: HistoryConfiguration = .init(),
        keyPrefix: String = "switchboard:",
        checks: RedisDeliveryChecks = .init(),
        clock: C,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "switchboard.redis.broker")
    ) throws where C.Duration == Duration {
        try self.init(
            configuration: configuration, pubsubConfiguration: configuration, history: history, keyPrefix: keyPrefix,
            checks: checks, clock: clock, eventLoopGroup: eventLoopGroup, logger: logger)
    }

    /// `pubsubConfiguration` is where the pub/sub connection goes: the same server as the command
    /// pool, reached another way (tests put a proxy in front of it alone).
    init<C: Clock & Sendable>(
        configuration: RedisConfiguration,
        pubsubConfiguration: RedisConfiguration,
        history: HistoryConfiguration = .init(),
        keyPrefix: String = "switchboard:",
        checks: RedisDeliveryChecks = .init(),
        clock: C,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "switchboard.redis.broker")
    ) throws where C.Duration == Duration {
        try checks.validate()
        self.keyPrefix = keyPrefix
        self.history = history
        self.checks = checks
        self.logger = logger
        let time = NodeTime(clock: clock)
        self.time = time
        self.nowMilliseconds = time.now
        let node = NodeTime.nodeID()
        self.node = node
        let client = try RedisClient(configuration: configuration, eventLoopGroup: eventLoopGroup, logger: logger)
        self.client = client
        let messages = MessageSink()
        let pubsub = try RedisSubscriber(
            configuration: pubsubConfiguration, eventLoopGroup: eventLoopGroup, logger: logger,
            onMessage: { channel, payload in messages.message(channel, payload) },
            onReconnect: { messages.reconnected() })
        self.pubsub = pubsub
        self.roomsLoop = pubsub.eventLoop
        self.rooms = NIOLoopBoundBox.makeBoxSendingValue([:], eventLoop: pubsub.eventLoop)
        self.pubsubProbe = RedisPubSubProbe(
            channel: "\(keyPrefix)node:\(node)", client: client, pubsub: pubsub, timeout: checks.probeTimeout, logger: logger)
        messages.broker.withLockedValue { $0 = self }
    }

    /// A broker on the system's clock.
    public convenience init(
        configuration: RedisConfiguration,
        history: HistoryConfiguration = .init(),
        keyPrefix: String = "switchboard:",
        checks: RedisDeliveryChecks = .init(),
        logger: Logger = Logger(label: "switchboard.redis.broker")
    ) throws {
        try self.init(configuration: configuration, history: history, keyPrefix: keyPrefix, checks: checks, clock: ContinuousClock(), logger: logger)
    }

    /// Passes the pub/sub connection's callbacks to the broker, which exists only after the
    /// connection's set-up.
    private final class MessageSink: Sendable {
        let broker = NIOLockedValueBox<RedisBroker?>(nil)
        func message(_ channel: String, _ payload: ByteBuffer) {
            broker.withLockedValue { $0 }?.received(channel: channel, payload: payload)
        }
        func reconnected() {
            broker.withLockedValue { $0 }?.catchUp()
        }
    }

    // MARK: Service

    /// Runs the command pool, the pub/sub connection and the delivery checks until a graceful
    /// shutdown or cancellation.
    public func run() async throws {
        // No connection is open yet, so this fails; the channel stays wanted and every
        // connection subscribes it.
        try? await pubsub.subscribe([pubsubProbe.channel, usersChannel])
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await self.client.run() }
            group.addTask { try await self.pubsub.run() }
            group.addTask {
                await self.time.everyTurn(of: self.checks.probeInterval, logger: self.logger, failure: "Redis pub/sub probe failed") {
                    await self.pubsubProbe.probeIfIdle()
                }
            }
            group.addTask {
                await self.time.everyTurn(of: self.checks.auditInterval, logger: self.logger, failure: "audit of rooms' positions failed") {
                    _ = try await self.audit()
                }
            }
        }
    }

    /// Whether the command pool and the pub/sub connection are open: publishes and joins can
    /// succeed.
    public var isConnected: Bool { client.isConnected && pubsub.isConnected }

    /// Whether the last probe of the pub/sub connection came back (`true` before the first):
    /// `false` means the subscription was found wedged, and stays so until a probe comes back.
    public var subscriptionConfirmed: Bool { pubsubProbe.isConfirmed }

    /// Why the node cannot serve now, for a readiness check (`nil`: ready): `"redis unreachable"`
    /// while no command connection is open, `"redis pub/sub not confirmed"` from a probe that did
    /// not come back (through the reconnect it caused) until one comes back, `"redis
    /// unreachable"` while the pub/sub connection is not open otherwise.
    public var notReadyReason: String? {
        if !client.isConnected { return "redis unreachable" }
        if !subscriptionConfirmed { return "redis pub/sub not confirmed" }
        if !pubsub.isConnected { return "redis unreachable" }
        return nil
    }

    /// Publishes a probe to the node's own channel and waits (at most `checks.probeTimeout`) for
    /// it to come back on the pub/sub connection; returns whether it did. One that was published
    /// and did not come back drops the pub/sub connection, whose reconnect catches every room up.
    /// `run()` calls it when the connection has been idle for `checks.probeInterval`.
    func probe() async -> Bool {
        await pubsubProbe.probe()
    }

    /// Waits until the command pool and the pub/sub connection are open (for start-up and tests).
    public func waitUntilConnected(timeout: Duration) async throws {
        try await client.waitUntilConnected(timeout: timeout)
        let deadline = ContinuousClock.now + timeout
        while !pubsub.isConnected {
            guard ContinuousClock.now < deadline else { throw RedisError.unavailable }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    // MARK: Keys

    func streamKey(_ room: String) -> String { "\(keyPrefix){\(room)}:stream" }
    func historyKey(_ room: String) -> String { "\(keyPrefix){\(room)}:history" }
    func channel(_ room: String) -> String { "\(keyPrefix)room:\(room)" }

    private var channelPrefix: String { "\(keyPrefix)room:" }

    // MARK: Broker

    public func attach(_ subscriber: any BrokerSubscriber) {
        _ = subscriberReference.storeIfNilThenLoad(SubscriberReference(subscriber))
    }

    public func subscribe(_ room: String, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        roomsLoop.execute {
            self.rooms.value[room, default: RoomSubscription()].wanted = true
            self.rooms.value[room]?.waiters.append(promise)
            self.reconcile(room)
        }
        return promise.futureResult
    }

    public func unsubscribe(_ room: String) {
        roomsLoop.execute {
            guard self.rooms.value[room] != nil else { return }
            self.rooms.value[room]?.wanted = false
            self.reconcile(room)
        }
    }

    /// On the pub/sub loop: starts the next Redis operation the room needs, if none is under way.
    private func reconcile(_ room: String) {
        guard var state = rooms.value[room], !state.busy else { return }
        if state.wanted && state.confirmed {
            let waiters = state.waiters
            state.waiters = []
            rooms.value[room] = state
            for waiter in waiters { waiter.succeed() }
        } else if state.wanted || state.active {
            let subscribing = state.wanted
            state.busy = true
            rooms.value[room] = state
            let channel = self.channel(room)
            let pubsub = self.pubsub
            let loop = roomsLoop
            Task {
                var failure: (any Error)?
                do {
                    if subscribing {
                        try await pubsub.subscribe([channel])
                    } else {
                        try await pubsub.unsubscribe([channel])
                    }
                } catch {
                    failure = error
                }
                let outcome = failure
                loop.execute { self.finished(room, subscribing: subscribing, failure: outcome) }
            }
        } else {
            rooms.value[room] = nil
            // A subscribe taken back before Redis was asked: nobody waits for it any more.
            for waiter in state.waiters { waiter.fail(RedisError.unavailable) }
        }
    }

    /// On the pub/sub loop: a SUBSCRIBE or UNSUBSCRIBE of `room` ended.
    private func finished(_ room: String, subscribing: Bool, failure: (any Error)?) {
        guard var state = rooms.value[room] else { return }
        state.busy = false
        if subscribing {
            state.active = true
            state.confirmed = failure == nil
            if failure == nil { recordBase(room) }
            if let failure, state.wanted {
                // The joins waiting now cannot be sure to receive the room's events: they fail.
                // No retry from here (Redis may be down): the next join asks again.
                let waiters = state.waiters
                state.waiters = []
                rooms.value[room] = state
                for waiter in waiters { waiter.fail(failure) }
                return
            }
        } else {
            if let failure {
                logger.warning("Redis UNSUBSCRIBE failed", metadata: ["room": "\(room)", "error": "\(failure)"])
            }
            // Either way the pub/sub connection no longer wants the channel.
            state.active = false
            state.confirmed = false
            state.last = nil
            state.base = nil
            state.held = nil
        }
        rooms.value[room] = state
        reconcile(room)
    }

    public func publish(_ publication: Publication, on eventLoop: any EventLoop) -> EventLoopFuture<EventID?> {
        var tag = "-"
        var tagNumber: UInt64?
        if let origin = publication.origin {
            let number = nextTag.loadThenWrappingIncrement(ordering: .relaxed)
            let now = nowMilliseconds()
            origins.withLockedValue { origins in
                origins[number] = PendingOrigin(socket: origin, since: now)
                if origins.count > 4096 {
                    // Messages that never came back (the pub/sub connection was down): forgotten
                    // after a minute.
                    origins = origins.filter { now - $0.value.since < 60_000 }
                }
            }
            tag = "\(node).\(number)"
            tagNumber = number
        }
        let forget: @Sendable () -> Void = { [origins, tagNumber] in
            if let tagNumber { _ = origins.withLockedValue { $0.removeValue(forKey: tagNumber) } }
        }
        let channel = self.channel(publication.room)
        guard publication.persistent else {
            var header = ByteBuffer(string: "\(tag) - ")
            var envelope = publication.envelopeWithoutPosition()
            header.writeBuffer(&envelope)
            return client.enqueue(RESPCommand("PUBLISH", RESPCommandArgument(channel), RESPCommandArgument(header)), affinity: publication.room, on: eventLoop)
                .map { _ in nil }
                .flatMapErrorThrowing { error in
                    forget()
                    throw error
                }
        }
        let (prefix, suffix) = publication.envelopeAroundPosition()
        let keys: [RESPCommandArgument] = [RESPCommandArgument(streamKey(publication.room)), RESPCommandArgument(historyKey(publication.room))]
        let arguments: [RESPCommandArgument] = [
            RESPCommandArgument(prefix), RESPCommandArgument(suffix),
            RESPCommandArgument(nowMilliseconds()), RESPCommandArgument(Self.milliseconds(history.retention)),
            RESPCommandArgument(max(history.maxEventsPerRoom, 0)), RESPCommandArgument(EventID.newEpoch()),
            RESPCommandArgument(channel), RESPCommandArgument(tag),
        ]
        // In order, without a task: a connection's next `message.send` may be published before
        // this one has answered (see `Broker.publish`).
        return client.evalInOrder(RedisBrokerScripts.publish, keys: keys, arguments: arguments, affinity: publication.room, on: eventLoop)
            .flatMapThrowing { reply -> EventID? in
                guard let text = reply.string, let position = EventID(text) else {
                    throw RedisError.protocolError("the publish script answered \(reply)")
                }
                return position
            }
            .flatMapErrorThrowing { error in
                forget()
                throw error
            }
    }

    /// The Lua script ``publish(_:on:)`` runs (KEYS: the room's stream and history keys; ARGV:
    /// envelope prefix, envelope suffix, now ms, retention ms, events kept, a new epoch, channel,
    /// message tag), for a benchmark that runs the same `EVALSHA` with `redis-benchmark`.
    public static var publishScript: RedisScript { RedisBrokerScripts.publish }

    public func recover(_ room: String, after position: EventID?, limit: Int, on eventLoop: any EventLoop) -> EventLoopFuture<Recovery> {
        let promise = eventLoop.makePromise(of: Recovery.self)
        let keys: [RESPCommandArgument] = [RESPCommandArgument(streamKey(room)), RESPCommandArgument(historyKey(room))]
        let arguments: [RESPCommandArgument] = [
            RESPCommandArgument(position?.epoch ?? ""), RESPCommandArgument(position?.offset ?? 0),
            RESPCommandArgument(max(limit, 0)), RESPCommandArgument(EventID.newEpoch()),
            RESPCommandArgument(nowMilliseconds()), RESPCommandArgument(Self.milliseconds(history.retention)),
        ]
        let client = self.client
        promise.completeWithTask {
            let reply = try await client.eval(RedisBrokerScripts.recover, keys: keys, arguments: arguments)
            return try Self.recovery(from: reply, after: position)
        }
        return promise.futureResult
    }

    public func latest(_ room: String, limit: Int, on eventLoop: any EventLoop) -> EventLoopFuture<[HistoryEntry]> {
        let promise = eventLoop.makePromise(of: [HistoryEntry].self)
        let keys: [RESPCommandArgument] = [RESPCommandArgument(streamKey(room)), RESPCommandArgument(historyKey(room))]
        let arguments: [RESPCommandArgument] = [
            RESPCommandArgument(max(limit, 0)), RESPCommandArgument(nowMilliseconds()),
            RESPCommandArgument(Self.milliseconds(history.retention)),
        ]
        let client = self.client
        promise.completeWithTask {
            let reply = try await client.eval(RedisBrokerScripts.latest, keys: keys, arguments: arguments)
            return try Self.latest(from: reply)
        }
        return promise.futureResult
    }

    // MARK: Replies

    static func milliseconds(_ duration: Duration) -> Int64 { NodeTime.milliseconds(duration) }

    /// `<published ms>:<envelope>` → the envelope's frame.
    static func frame(ofMember member: RESPValue) throws -> ByteBuffer {
        guard let buffer = member.buffer, let colon = buffer.readableBytesView.firstIndex(of: UInt8(ascii: ":")) else {
            throw RedisError.protocolError("a history entry without its time: \(member)")
        }
        return BrokerEvent.frame(envelope: buffer.readableBytesView[(colon + 1)...])
    }

    static func recovery(from reply: RESPValue, after position: EventID?) throws -> Recovery {
        guard let parts = reply.array, parts.count >= 3, let epoch = parts[0].string, let offset = parts[1].int, offset >= 0,
            let recovered = parts[2].int
        else {
            throw RedisError.protocolError("the recover script answered \(reply)")
        }
        let current = EventID(epoch: epoch, offset: UInt64(offset))
        guard recovered == 1 else { return .notRecoverable(current: current) }
        guard let position, parts.count > 3 else { return .recovered(current: current, events: []) }
        var events: [HistoryEntry] = []
        events.reserveCapacity(parts.count - 3)
        for (index, member) in parts[3...].enumerated() {
            events.append(HistoryEntry(position: EventID(epoch: epoch, offset: position.offset + 1 + UInt64(index)), frame: try frame(ofMember: member)))
        }
        return .recovered(current: current, events: events)
    }

    static func latest(from reply: RESPValue) throws -> [HistoryEntry] {
        guard let parts = reply.array, let first = parts.first else {
            throw RedisError.protocolError("the latest script answered \(reply)")
        }
        guard let epoch = first.string, !first.isNull else { return [] }
        guard parts.count % 2 == 1 else { throw RedisError.protocolError("the latest script answered \(reply)") }
        var entries: [HistoryEntry] = []
        var index = 1
        while index + 1 < parts.count {
            guard let offset = parts[index].int, offset > 0 else { throw RedisError.protocolError("a history entry without its offset: \(reply)") }
            entries.append(HistoryEntry(position: EventID(epoch: epoch, offset: UInt64(offset)), frame: try frame(ofMember: parts[index + 1])))
            index += 2
        }
        return entries
    }

    // MARK: Delivery

    /// On the pub/sub loop: one message, `<tag> <eid or -> <envelope>`.
    private func received(channel: String, payload: ByteBuffer) {
        pubsubProbe.noteMessage()
        guard channel.hasPrefix(channelPrefix) else {
            if channel == pubsubProbe.channel { pubsubProbe.received(payload) }
            if channel == usersChannel { receivedUserEvent(payload) }
            return
        }
        let room = String(channel.dropFirst(channelPrefix.count))
        let view = payload.readableBytesView
        guard let firstSpace = view.firstIndex(of: UInt8(ascii: " ")),
            let secondSpace = view[(firstSpace + 1)...].firstIndex(of: UInt8(ascii: " "))
        else {
            logger.error("malformed room message from Redis", metadata: ["channel": "\(channel)"])
            return
        }
        let tag = String(decoding: view[view.startIndex..<firstSpace], as: UTF8.self)
        let eid = String(decoding: view[(firstSpace + 1)..<secondSpace], as: UTF8.self)
        let position = eid == "-" ? nil : EventID(eid)
        if eid != "-", position == nil {
            logger.error("room message from Redis with a malformed position", metadata: ["channel": "\(channel)", "eid": "\(eid)"])
            return
        }
        var origin: Socket?
        if let dot = tag.lastIndex(of: "."), tag[..<dot] == node, let number = UInt64(tag[tag.index(after: dot)...]) {
            origin = origins.withLockedValue { $0.removeValue(forKey: number) }?.socket
        }
        let frame = BrokerEvent.frame(envelope: view[(secondSpace + 1)...])
        let event = BrokerEvent(room: room, position: position, frame: frame, origin: origin)
        guard var state = rooms.value[room], state.active || state.busy else { return }
        if state.held != nil {
            state.held?.append((position, event))
            rooms.value[room] = state
            return
        }
        if let position {
            if let last = state.last, last.epoch == position.epoch {
                if position.offset <= last.offset { return }  // delivered already (by a catch-up)
                if position.offset > last.offset + 1 {
                    // Offsets have no gaps: the events between were lost (the pub/sub connection
                    // dropped). They come from history first.
                    state.held = [(position, event)]
                    rooms.value[room] = state
                    startCatchUp(room, after: last)
                    return
                }
            }
            state.last = position
            rooms.value[room] = state
        }
        subscriber?.deliver(event)
    }

    /// On the pub/sub loop, once Redis confirmed the subscription: reads the room's position, the
    /// start of a catch-up while nothing has been delivered.
    private func recordBase(_ room: String) {
        let promise = roomsLoop.makePromise(of: Recovery.self)
        promise.futureResult.whenSuccess { recovery in
            guard var state = self.rooms.value[room], state.confirmed, state.base == nil else { return }
            state.base = recovery.current
            self.rooms.value[room] = state
        }
        recover(room, after: nil, limit: 0, on: roomsLoop).cascade(to: promise)
    }

    /// On the pub/sub loop: reads what `room` has after `position` from history; live events are
    /// held meanwhile (`held` is set by the caller). A read Redis does not answer is tried again
    /// until `deadline` (by default `checks.catchUpPatience` from now).
    private func startCatchUp(_ room: String, after position: EventID, deadline: ContinuousClock.Instant? = nil, attempt: Int = 0) {
        guard var state = rooms.value[room] else { return }
        let deadline = deadline ?? ContinuousClock.now + checks.catchUpPatience
        if attempt == 0 { state.catchUps &+= 1 }
        rooms.value[room] = state
        let catchUp = state.catchUps
        let promise = roomsLoop.makePromise(of: Recovery.self)
        promise.futureResult.whenComplete { result in
            self.caughtUp(room, after: position, result, catchUp: catchUp, deadline: deadline, attempt: attempt)
        }
        recover(room, after: position, limit: max(history.maxEventsPerRoom, 1), on: roomsLoop).cascade(to: promise)
    }

    /// After a catch-up's read failed: waits for the command pool (or, when it is open, a short
    /// backoff), then, on the pub/sub loop, reads again if the room still waits for that catch-up.
    private func retryCatchUp(_ room: String, after position: EventID, catchUp: UInt64, deadline: ContinuousClock.Instant, attempt: Int) {
        let client = self.client
        let loop = roomsLoop
        // 50 ms doubling to 1 s: a read that failed on an open pool (a timeout, a connection
        // closed under it) is not tried again at once.
        let backoff = min(Duration.milliseconds(50 << min(attempt, 5)), .seconds(1))
        Task {
            let remaining = deadline - ContinuousClock.now
            if client.isConnected {
                try? await Task.sleep(for: min(backoff, max(remaining, .zero)))
            } else {
                try? await client.waitUntilConnected(timeout: max(remaining, .zero))
            }
            loop.execute {
                guard let state = self.rooms.value[room], state.held != nil, state.catchUps == catchUp else { return }
                self.startCatchUp(room, after: position, deadline: deadline, attempt: attempt + 1)
            }
        }
    }

    /// After the pub/sub connection was back (it re-subscribed every channel): for each room,
    /// what was published during the gap comes from history, ahead of what arrives live.
    private func catchUp() {
        roomsLoop.execute {
            for (room, var state) in self.rooms.value where state.confirmed && state.held == nil {
                guard let from = state.last ?? state.base else {
                    // Nothing delivered and no position known: what was missed cannot be told.
                    self.logger.warning("Redis pub/sub reconnected before the room's position was known; resynchronizing it", metadata: ["room": "\(room)"])
                    self.subscriber?.resynchronize(room)
                    continue
                }
                state.held = []
                self.rooms.value[room] = state
                self.startCatchUp(room, after: from)
            }
        }
    }

    // MARK: Audit

    /// Compares each subscribed room's last delivered position with the room's position in
    /// Redis, and catches up (from history, as for a gap) each room Redis is ahead in: an event
    /// was lost and no later one revealed it. A room whose epoch changed is resynchronized.
    /// Returns the rooms found behind. `run()` calls it every `checks.auditInterval`.
    ///
    /// Events still on their way are not taken for lost ones: after reading the positions, the
    /// node sends a probe and waits for it on the pub/sub connection. Redis runs commands one at a
    /// time and a connection's messages arrive in order, so every event counted in a position it
    /// read was published before the probe and has been received by the time the probe is back.
    /// (A catch-up is safe anyway: delivery skips positions already delivered.)
    ///
    /// Throws the error of the read, or `RedisError.timeout` when the probe did not come back
    /// (the pub/sub connection was found wedged or is reconnecting, which catches every room up).
    func audit() async throws -> [String] {
        let rooms = try await roomsLoop.submit {
            self.rooms.value.compactMap { room, state in Self.auditable(state) != nil ? room : nil }
        }.get()
        guard !rooms.isEmpty else { return [] }
        var positions: [(room: String, position: EventID?)] = []
        positions.reserveCapacity(rooms.count)
        var start = 0
        while start < rooms.count {
            let batch = rooms[start..<min(start + 512, rooms.count)]
            let replies = try await client.pipeline(batch.map { RESPCommand("HMGET", RESPCommandArgument(streamKey($0)), "epoch", "offset") })
            for (room, reply) in zip(batch, replies) { positions.append((room, try Self.position(from: reply))) }
            start += 512
        }
        guard await pubsubProbe.probe() else { throw RedisError.timeout }
        let read = positions
        return try await roomsLoop.submit { self.compare(read) }.get()
    }

    /// Where a room's delivery stands, when an audit can judge it: subscribed, no operation or
    /// catch-up under way, and a position known.
    private static func auditable(_ state: RoomSubscription) -> EventID? {
        guard state.wanted, state.confirmed, !state.busy, state.held == nil else { return nil }
        return state.last ?? state.base
    }

    /// `HMGET stream epoch offset` → the room's position; `nil` when the stream is gone (nothing
    /// was published since, or it would exist again).
    static func position(from reply: RESPValue) throws -> EventID? {
        guard let parts = reply.array, parts.count == 2 else {
            throw RedisError.protocolError("HMGET answered \(reply)")
        }
        guard let epoch = parts[0].string, !parts[0].isNull else { return nil }
        guard let text = parts[1].string, let offset = UInt64(text) else {
            throw RedisError.protocolError("a room's stream without its offset: \(reply)")
        }
        return EventID(epoch: epoch, offset: offset)
    }

    /// On the pub/sub loop, once every event the positions count has been received.
    private func compare(_ positions: [(room: String, position: EventID?)]) -> [String] {
        var behind: [String] = []
        for (room, position) in positions {
            guard let position, var state = rooms.value[room], let from = Self.auditable(state) else { continue }
            if position.epoch != from.epoch && position.offset == 0 {
                // The room's keys were lost and a resume started a new epoch, without events yet:
                // nothing was missed, and the new epoch's first event follows this position.
                state.last = position
                rooms.value[room] = state
            } else if position.epoch != from.epoch {
                // The room's keys were lost and its new epoch has events this node never saw.
                logger.warning(
                    "the room's epoch in Redis is not the one delivered; resynchronizing it",
                    metadata: ["room": "\(room)", "delivered": "\(from)", "redis": "\(position)"])
                state.last = position
                rooms.value[room] = state
                subscriber?.resynchronize(room)
                behind.append(room)
            } else if position.offset > from.offset {
                logger.warning(
                    "events of the room were lost on Redis pub/sub; catching up from history",
                    metadata: ["room": "\(room)", "delivered": "\(from)", "redis": "\(position)"])
                state.held = []
                rooms.value[room] = state
                startCatchUp(room, after: from)
                behind.append(room)
            }
        }
        return behind
    }

    private func caughtUp(
        _ room: String, after last: EventID, _ result: Result<Recovery, any Error>, catchUp: UInt64, deadline: ContinuousClock.Instant, attempt: Int
    ) {
        guard var state = rooms.value[room], let held = state.held, state.catchUps == catchUp else { return }
        if case .failure(let error) = result, ContinuousClock.now < deadline {
            // Redis did not answer, which is not history having lost the events: typically the
            // command pool is still reconnecting while the pub/sub connection is back (Redis
            // restarted). Live events stay held; the room's members stay connected.
            if attempt == 0 {
                logger.info("catch-up from history failed; trying again", metadata: ["room": "\(room)", "error": "\(error)"])
            }
            retryCatchUp(room, after: last, catchUp: catchUp, deadline: deadline, attempt: attempt)
            return
        }
        state.held = nil
        let subscriber = self.subscriber
        switch result {
        case .success(.recovered(_, let events)):
            var delivered = last
            for entry in events where entry.position.offset > delivered.offset {
                subscriber?.deliver(BrokerEvent(room: room, position: entry.position, frame: entry.frame, origin: nil))
                delivered = entry.position
            }
            state.last = delivered
            for (position, event) in held {
                if let position {
                    guard position.epoch != delivered.epoch || position.offset > delivered.offset else { continue }
                    delivered = position
                    state.last = position
                }
                subscriber?.deliver(event)
            }
        case .success(.notRecoverable), .failure:
            // What this node missed cannot be had: its members reconnect and resume on their own.
            logger.warning("events missed while the Redis pub/sub connection was down; resynchronizing the room", metadata: ["room": "\(room)"])
            state.last = held.last(where: { $0.position != nil })?.position
            rooms.value[room] = state
            subscriber?.resynchronize(room)
            return
        }
        rooms.value[room] = state
    }
}
