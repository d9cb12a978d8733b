import Foundation
import NIOCore

/// The storm of `resume`: every subscriber dropped at once, events sent meanwhile, every
/// subscriber reconnected and resumed at once.
public struct ResumeStorm: Sendable, Codable, Equatable {
    /// Subscribers dropped (those connected and joined before).
    public var subscribers: Int
    /// `message.send` the publisher wrote while they were away.
    public var events: Int
    /// Acks the publisher got for them.
    public var publisherAcks: Int
    /// `error` replies the publisher got for them.
    public var publisherErrors: Int
    /// The reconnect: connections opened whose `session.hello` was acked.
    public var reconnect: ConnectSummary
    /// `publisherAcks` × `subscribers`.
    public var expected: Int
    /// `message.new` received by the reconnected subscribers after their hello.
    public var delivered: Int
    /// `delivered` / `expected`.
    public var deliveredFraction: Double
    /// Room events received at or before a position already seen (over each subscriber's two
    /// connections).
    public var duplicates: Int
    /// Positions skipped (an offset more than one past the last seen, or a new epoch).
    public var gaps: Int
    /// Subscribers whose room came back `recovered: false` (they got `state.refresh`, not the events).
    public var notRecovered: Int
    /// Reconnected subscribers that had not caught up within the catch-up timeout, or whose
    /// connection closed first.
    public var notCaughtUp: Int
    /// The first reason a subscriber did not reconnect or catch up.
    public var firstError: String?
    /// From the start of the first reconnect to the last subscriber's catching up, seconds.
    public var catchUpS: Double
    /// Per subscriber, from its `session.hello` to the arrival of the last event sent while it
    /// was away (or of its `state.refresh`).
    public var catchUp: LatencySummary
    /// CPU from the start of the first reconnect until every subscriber caught up (or gave up).
    public var cpu: CPUUsage
    /// Every subscriber back and caught up, every event once, no gap, every room recovered, no
    /// publisher error.
    public var pass: Bool
}

/// The single-client part of `resume`: one client misses `replayEvents` events and resumes alone.
public struct ReplayResult: Sendable, Codable, Equatable {
    /// The room (`<room>-replay`).
    public var room: String
    /// Events the client missed (the publisher's acks).
    public var events: Int
    /// `message.new` the client received after its hello.
    public var received: Int
    /// Room events received at or before a position already seen.
    public var duplicates: Int
    /// Positions skipped.
    public var gaps: Int
    /// Whether the hello's ack said `recovered: true`.
    public var recovered: Bool
    /// From sending `session.hello` to receiving the last missed event, milliseconds; `nil` when
    /// it did not arrive within the catch-up timeout.
    public var replayMs: Double?
    /// Every missed event arrived, once, in order.
    public var complete: Bool
    /// Why it did not catch up, if it did not.
    public var error: String?
}

/// Result of `resume`.
public struct ResumeResult: Sendable, Codable, Equatable {
    /// The first connect phase (subscribers and publisher).
    public var connect: ConnectSummary
    /// The storm's room.
    public var room: String
    /// Content bytes per message.
    public var payloadBytes: Int
    /// Drop, miss `events`, reconnect and resume, all subscribers at once.
    public var storm: ResumeStorm
    /// One client replaying `replayEvents` missed events.
    public var replay: ReplayResult
}

/// `subscribers` subscribers (users `bench-<i>`) joined to `room` follow its positions; all are
/// dropped at once (TCP closed, no Close frame), the publisher (`bench-<subscribers>`) sends
/// `events` messages, and all reconnect at once and resume with `session.hello` from the last
/// position each saw. Then one client (`bench-<subscribers + 1>`) does the same alone in
/// `<room>-replay` with `replayEvents` events.
///
/// Presence events take no position, so each subscriber misses exactly `events` events, which the
/// server must hold (`--history-size`) and may replay (`--max-replay`, both 1000 by default).
enum ScenarioResume {
    /// `message.send` awaiting their ack at once: the server's per-connection queue (default 16),
    /// so that it never stops reading the publisher.
    static let publishWindow = 16

    /// The room of the single-client replay.
    static func replayRoom(_ room: String) -> String {
        room + "-replay"
    }

    static func run(_ context: BenchContext) async throws -> ResumeResult {
        let options = context.options
        let room = options.room
        let replyTimeout = options.replyTimeout
        let subscriberPhase = await context.connectEach(
            users: Array(0..<options.subscribers), phase: "resume: connecting subscribers", ready: "connected and joined"
        ) { _, connection in
            try await connection.join(room: room, timeout: replyTimeout, tracksPositions: true)
        }
        let subscribers = subscriberPhase.connections
        guard !subscribers.isEmpty else {
            throw BenchError.setupFailed("no subscriber could connect and join: \(subscriberPhase.firstError ?? "unknown error")")
        }
        let publisherPhase = await context.forPublisher.connectAndJoin(count: 1, firstIndex: options.subscribers, phase: "resume: connecting the publisher") { _ in room }
        guard let publisher = publisherPhase.connections.first else {
            await BenchConnection.closeAll(subscribers)
            throw BenchError.setupFailed("the publisher could not connect and join: \(publisherPhase.firstError ?? "unknown error")")
        }
        var connect = subscriberPhase.summary
        connect.requested += 1
        connect.connected += 1
        connect.seconds = round2(Double((publisherPhase.finished - subscriberPhase.started).nanoseconds) / 1e9)
        do {
            try await publisher.configureMessages(room: room, payloadBytes: options.payloadBytes)
        } catch {
            await BenchConnection.closeAll(subscribers + [publisher])
            throw error
        }
        // The join announcements settle first, so that every subscriber's position is final.
        await context.waitUntilQuiet(limit: .seconds(15))
        do {
            let storm = try await runStorm(context, subscribers: subscribers, publisher: publisher)
            let replay = try await runReplay(context, publisher: publisher)
            await BenchConnection.closeAll([publisher])
            return ResumeResult(connect: connect, room: room, payloadBytes: options.payloadBytes, storm: storm, replay: replay)
        } catch {
            await BenchConnection.closeAll([publisher])
            throw error
        }
    }

    // MARK: The storm

    /// Drops `subscribers` (all of them closed when it returns or throws), publishes, and measures
    /// the reconnect.
    private static func runStorm(_ context: BenchContext, subscribers: [BenchConnection], publisher: BenchConnection) async throws -> ResumeStorm {
        let options = context.options
        let room = options.room
        if options.showProgress { Progress.write("resume: dropping \(subscribers.count) subscribers (TCP closed, no Close frame)") }
        await BenchConnection.dropAll(subscribers)
        // Closed, so these are the last positions each one read.
        var before: [Int: PositionTracker] = [:]
        for subscriber in subscribers {
            if let tracker = await subscriber.positions(), tracker.position != nil { before[subscriber.index] = tracker }
        }
        // Only after every drop: an event read by a subscriber before its close would not be
        // replayed, and `expected` would be wrong.
        if options.showProgress { Progress.write("resume: the publisher sends \(options.events) events") }
        let burst = try await publisher.sendBurst(count: options.events, window: publishWindow, timeout: options.replyTimeout)
        guard let target = burst.lastAck else {
            throw BenchError.setupFailed("the publisher got no ack for its \(options.events) messages (\(burst.errors) errors)")
        }
        // The publisher reads every presence.leave of the drop: the server is idle again when
        // the reconnect starts, so the window below measures the storm alone.
        await context.waitUntilQuiet(limit: .seconds(15))

        let trackers = before
        let users = subscribers.map(\.index).filter { before[$0] != nil }
        let replyTimeout = options.replyTimeout
        let catchUpTimeout = options.catchUpTimeout
        // Slot 0: rooms not recovered.
        let notRecoveredCounter = SharedCounter(slots: 1)
        let cpu = context.cpuWindow()
        let stormStarted = unixNanos()
        let phase = await context.connectEach(users: users, phase: "resume: reconnecting", ready: "reconnected and resumed") { _, connection in
            guard let previous = trackers[connection.index] else {
                throw BenchError.setupFailed("no position of bench-\(connection.index) to resume from")
            }
            let ack = try await connection.resume(room: room, from: previous, target: target, timeout: replyTimeout, catchUpTimeout: catchUpTimeout)
            try Self.checkHelloAck(ack, notRecovered: notRecoveredCounter)
        }
        let reconnected = phase.connections
        let caughtUpCounter = SharedCounter(slots: 1)
        let line: @Sendable () async -> String = { "resume: \(caughtUpCounter.value())/\(reconnected.count) caught up" }
        let waited = try await Progress.during(options.showProgress, line) { () async -> (LatencyRecorder, Int64?, Int, String?) in
            var times = LatencyRecorder()
            var lastCaughtUp: Int64?
            var failed = 0
            var firstError: String?
            for connection in reconnected {
                do {
                    let catchUp = try await connection.caughtUp()
                    times.record(nanoseconds: catchUp.nanoseconds)
                    lastCaughtUp = max(lastCaughtUp ?? catchUp.caughtUpAtNanos, catchUp.caughtUpAtNanos)
                    caughtUpCounter.add(1)
                } catch {
                    failed += 1
                    if firstError == nil { firstError = "bench-\(connection.index): \(BenchContext.benchError(error))" }
                }
            }
            return (times, lastCaughtUp, failed, firstError)
        }
        let usage = cpu.stop()
        let (times, lastCaughtUp, notCaughtUp, catchUpError) = waited
        // A duplicate would come after the event waited for: give stragglers a moment.
        await context.waitUntilQuiet(limit: .seconds(5))
        var delivered = 0
        var duplicates = 0
        var gaps = 0
        var resumedUsers = Set<Int>()
        for connection in reconnected {
            guard let tracker = await connection.positions() else { continue }
            resumedUsers.insert(connection.index)
            delivered += tracker.messages
            duplicates += tracker.duplicates
            gaps += tracker.gaps
        }
        // Those that did not come back still count what they saw before the drop.
        for (user, tracker) in before where !resumedUsers.contains(user) {
            duplicates += tracker.duplicates
            gaps += tracker.gaps
        }
        await BenchConnection.closeAll(reconnected)

        let expected = burst.acks * subscribers.count
        let notRecovered = notRecoveredCounter.value()
        var reconnect = phase.summary
        let missingPositions = subscribers.count - users.count
        reconnect.requested += missingPositions
        reconnect.failed += missingPositions
        let storm = ResumeStorm(
            subscribers: subscribers.count, events: options.events, publisherAcks: burst.acks, publisherErrors: burst.errors,
            reconnect: reconnect, expected: expected, delivered: delivered,
            deliveredFraction: expected > 0 ? round4(Double(delivered) / Double(expected)) : 0,
            duplicates: duplicates, gaps: gaps, notRecovered: notRecovered, notCaughtUp: notCaughtUp,
            firstError: phase.firstError ?? catchUpError,
            catchUpS: lastCaughtUp.map { round3(Double($0 - stormStarted) / 1e9) } ?? 0,
            catchUp: times.summary, cpu: usage,
            pass: reconnect.failed == 0 && notCaughtUp == 0 && delivered == expected && duplicates == 0 && gaps == 0
                && notRecovered == 0 && burst.errors == 0)
        if options.showProgress {
            Progress.write(
                "resume: storm done: delivered \(delivered)/\(expected), duplicates \(duplicates), gaps \(gaps), "
                    + "not recovered \(notRecovered), caught up in \(fixed(storm.catchUpS, 3)) s → \(storm.pass ? "pass" : "FAIL")")
        }
        return storm
    }

    /// Counts a `recovered: false` room; throws for a room the hello refused (its `error`).
    private static func checkHelloAck(_ ack: [UInt8], notRecovered: SharedCounter) throws {
        try ack.withUnsafeBytes { bytes in
            if MessageScanner.contains(roomError, in: bytes) {
                throw BenchError.errorReply(String(decoding: UnsafeRawBufferPointer(rebasing: bytes.prefix(300)), as: UTF8.self))
            }
            if MessageScanner.contains(notRecoveredMarker, in: bytes) { notRecovered.add(1) }
        }
    }

    private static let notRecoveredMarker: [UInt8] = Array(#""recovered":false"#.utf8)
    private static let roomError: [UInt8] = Array(#""error":{"#.utf8)

    // MARK: The single-client replay

    /// One client in `<room>-replay` misses `replayEvents` events and resumes alone; the time
    /// from its hello to the last of them.
    private static func runReplay(_ context: BenchContext, publisher: BenchConnection) async throws -> ReplayResult {
        let options = context.options
        let room = replayRoom(options.room)
        let user = options.subscribers + 1
        try await publisher.join(room: room, timeout: options.replyTimeout)
        try await publisher.configureMessages(room: room, payloadBytes: options.payloadBytes)
        // A second connection of the client's user stays in the room throughout (a second tab):
        // then the drop announces no presence.leave and the reconnect no presence.join, so the
        // client's socket reads nothing but the replay.
        let holder = try await context.connect(index: user, token: context.token(index: user))
        var opened = [holder]
        do {
            try await holder.join(room: room, timeout: options.replyTimeout)
            let client = try await context.connect(index: user, token: context.token(index: user))
            opened.append(client)
            try await client.join(room: room, timeout: options.replyTimeout, tracksPositions: true)
            await context.waitUntilQuiet(limit: .seconds(15))
            try await client.drop().get()
            guard let previous = await client.positions(), previous.position != nil else {
                throw BenchError.setupFailed("the replay client's join gave no position")
            }
            if options.showProgress { Progress.write("resume: replay: the client is away; the publisher sends \(options.replayEvents) events") }
            let burst = try await publisher.sendBurst(count: options.replayEvents, window: publishWindow, timeout: options.replyTimeout)
            guard let target = burst.lastAck else {
                throw BenchError.setupFailed("the publisher got no ack for its \(options.replayEvents) messages (\(burst.errors) errors)")
            }
            // The second tab reads them live; the replay starts on an idle server.
            await context.waitUntilQuiet(limit: .seconds(15))
            let again = try await context.connect(index: user, token: context.token(index: user))
            opened.append(again)
            let ack = try await again.resume(
                room: room, from: previous, target: target, timeout: options.replyTimeout, catchUpTimeout: options.catchUpTimeout)
            let recovered = ack.withUnsafeBytes { !MessageScanner.contains(notRecoveredMarker, in: $0) && !MessageScanner.contains(roomError, in: $0) }
            var replayMs: Double?
            var failure: String?
            do {
                replayMs = round3(Double(try await again.caughtUp().nanoseconds) / 1e6)
            } catch {
                failure = BenchContext.benchError(error).description
            }
            await context.waitUntilQuiet(limit: .seconds(5))
            let seen = await again.positions() ?? PositionTracker()
            await BenchConnection.closeAll(opened)
            let complete = recovered && replayMs != nil && seen.messages == burst.acks && seen.duplicates == 0 && seen.gaps == 0
                && burst.errors == 0
            if options.showProgress {
                Progress.write(
                    "resume: replay done: \(seen.messages)/\(burst.acks) events in \(replayMs.map { fixed($0, 2) + " ms" } ?? "-"), "
                        + "\(complete ? "all once, in order" : "INCOMPLETE")")
            }
            return ReplayResult(
                room: room, events: burst.acks, received: seen.messages, duplicates: seen.duplicates, gaps: seen.gaps,
                recovered: recovered, replayMs: replayMs, complete: complete, error: failure)
        } catch {
            await BenchConnection.closeAll(opened)
            throw error
        }
    }
}
