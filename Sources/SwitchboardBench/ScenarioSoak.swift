import Foundation
import NIOCore
import NIOPosix

/// How soak connections ended.
public struct SoakDrops: Sendable, Codable, Equatable {
    /// TCP closed without a Close frame.
    public var abrupt = 0
    /// Half a `message.send` frame written, then TCP closed.
    public var midFrame = 0
    /// A whole `message.send` written, then TCP closed before its ack could arrive.
    public var afterSend = 0
    /// Close 1000 and the close handshake.
    public var graceful = 0
    /// Closed by the server first (a Close frame or TCP), e.g. 4008 or 1013.
    public var byServer = 0
    /// Connections that sent half an upgrade request and closed (never upgraded).
    public var halfHandshakes = 0
}

/// Result of `soak`.
public struct SoakResult: Sendable, Codable, Equatable {
    /// Users churning at once (one connection each at a time).
    public var users: Int
    /// Rooms (user i is in room `soak-<i % rooms>`).
    public var rooms: Int
    /// Churn time, seconds.
    public var durationS: Double
    /// `message.send` per second per connected user.
    public var ratePerUser: Double
    /// Lifetime of a connection: uniform in [lifetime / 8, lifetime], seconds.
    public var maxLifetimeS: Double
    /// WebSocket connections opened (upgraded) during the churn.
    public var connections: Int
    /// Connects that failed (no upgrade), and joins or resumes that failed.
    public var connectFailures: Int
    public var enterFailures: Int
    /// The first such failure.
    public var firstError: String?
    public var drops: SoakDrops
    /// `message.send` acked, and answered with an error.
    public var acked: Int
    public var errors: Int
    /// Room events the users received (live and replayed).
    public var received: Int
    /// Events a connection was sent twice (at or below what it had already been sent).
    public var rawDuplicates: Int
    /// The first raw duplicate: the user, and where it came in its connection's stream.
    public var firstDuplicate: String?
    /// Events above a user's resume position that it had seen before a hole (replayed by design).
    public var replayedAgain: Int
    /// Resumes answered `recovered: false` (a `state.refresh`), and epoch changes.
    public var notRecovered: Int
    public var epochChanges: Int
    /// Users verified at the end (a last resume, caught up to their room's last acked event).
    public var verified: Int
    /// Users that could not reconnect or catch up at the end.
    public var notCaughtUp: Int
    /// Acked `message.send` (after the user's first join) that a user of the room never saw.
    public var ackedLost: Int
    /// Positions up to the room's last acked one that a user never saw (acked or not).
    public var missingEvents: Int
    /// Members still listed in the soak's rooms once every user had gone and the presence grace
    /// period had passed.
    public var membersLeft: Int
    /// The server before the churn (idle), at its peak (sampled once a second), and after.
    public var serverBefore: ServerFootprint?
    public var serverPeak: ServerFootprint?
    public var serverAfter: ServerFootprint?
    /// From the last close to `serverAfter`, seconds.
    public var settleS: Double
    /// CPU over the churn.
    public var cpu: CPUUsage
    /// No acked event lost, no raw duplicate, every user caught up, every resume recovered, no
    /// member left, and the server's descriptors back to their idle count (``ServerFootprint/isBack(to:)``).
    public var pass: Bool
}

/// `users` users churn for `duration`: each connects, joins its room (`soak-<i % rooms>`) the
/// first time and resumes it with `session.hello` after that, publishes `message.send` (with
/// ids) at `rate` per second for a random lifetime, and leaves in one of four ways (TCP closed,
/// half a frame then closed, a message then closed before its ack, Close 1000); one reconnect in
/// ten is preceded by half an upgrade request on a connection closed at once. Every user follows
/// its room's positions over all its connections (``SoakTracker``). After the churn every user
/// resumes once more and must catch up to its room's last acked event: every acked event after
/// its first join must have reached it. Then the rooms must be empty of members and the server's
/// descriptors back to their idle count (read from /proc/PID with `serverPID`).
enum ScenarioSoak {
    static func room(_ index: Int, rooms: Int) -> String { "soak-\(index % rooms)" }

    /// The acks of the run: per room, the offsets acked (and their epoch).
    actor Ledger {
        private var acked: [[UInt64]]
        private var epochs: [[UInt8]?]

        init(rooms: Int) {
            acked = Array(repeating: [], count: rooms)
            epochs = Array(repeating: nil, count: rooms)
        }

        func record(room: Int, position: RoomPosition) {
            if epochs[room] == nil { epochs[room] = position.epoch }
            guard epochs[room] == position.epoch else { return }
            acked[room].append(position.offset)
        }

        /// The room's last acked position, and every acked offset.
        func room(_ index: Int) -> (last: RoomPosition?, offsets: [UInt64]) {
            guard let epoch = epochs[index], let last = acked[index].max() else { return (nil, []) }
            return (RoomPosition(epoch: epoch, offset: last), acked[index])
        }

        var total: Int { acked.reduce(0) { $0 + $1.count } }
    }

    /// Counters of the churn, shared by the user tasks.
    enum Slot: Int, CaseIterable {
        case connections, connectFailures, enterFailures, abrupt, midFrame, afterSend, graceful, byServer, halfHandshakes, acked, errors,
            notRecovered
    }

    static func run(_ context: BenchContext) async throws -> SoakResult {
        let options = context.options
        let users = options.connections
        let rooms = min(options.rooms, users)
        let ledger = Ledger(rooms: rooms)
        let counters = SharedCounter(slots: Slot.allCases.count)
        let firstError = FirstError()
        let before = await warmUp(users: users, context: context)
        let peak = PeakFootprint(before)
        let cpu = context.cpuWindow()
        let end = ContinuousClock.now + options.duration
        let line: @Sendable () async -> String = {
            if let pid = options.serverPID, let now = ServerFootprint.read(pid: pid) { peak.add(now) }
            return "soak: \(counters.value(Slot.connections.rawValue)) connections, \(counters.value(Slot.acked.rawValue)) acked, "
                + "\(counters.value(Slot.connectFailures.rawValue) + counters.value(Slot.enterFailures.rawValue)) failed"
        }
        // Sampled once a second even without progress lines.
        let sampler = Task {
            while !Task.isCancelled, ContinuousClock.now < end {
                try await Task.sleep(for: .seconds(1))
                if let pid = options.serverPID, let now = ServerFootprint.read(pid: pid) { peak.add(now) }
            }
        }
        let trackers = try await Progress.during(options.showProgress, line) {
            await withTaskGroup(of: (Int, SoakTracker).self) { group in
                for user in 0..<users {
                    group.addTask {
                        let tracker = await churn(
                            user: user, room: user % rooms, rooms: rooms, until: end, context: context, ledger: ledger, counters: counters,
                            firstError: firstError)
                        return (user, tracker)
                    }
                }
                var trackers = [SoakTracker](repeating: SoakTracker(), count: users)
                for await (user, tracker) in group { trackers[user] = tracker }
                return trackers
            }
        }
        sampler.cancel()
        let usage = cpu.stop()
        if options.showProgress { Progress.write("soak: churn over; every user resumes once more and catches up") }

        // Verification: every user resumes and catches up to its room's last acked event.
        var targets: [(last: RoomPosition?, offsets: [UInt64])] = []
        for room in 0..<rooms { targets.append(await ledger.room(room)) }
        let finalTargets = targets
        let verified = await verify(trackers: trackers, rooms: rooms, targets: finalTargets, context: context)
        var ackedLost = 0
        var missing = 0
        var notCaughtUp = 0
        var received = 0
        var rawDuplicates = 0
        var replayedAgain = 0
        var epochChanges = 0
        var verifiedCount = 0
        var firstDuplicate: String?
        for user in 0..<users {
            let outcome = verified[user]
            let tracker = outcome.tracker
            if firstDuplicate == nil, let duplicate = tracker.firstDuplicate { firstDuplicate = "bench-\(user) in soak-\(user % rooms): \(duplicate)" }
            received += tracker.received
            rawDuplicates += tracker.rawDuplicates
            replayedAgain += tracker.replayedAgain
            epochChanges += tracker.epochChanges
            if !outcome.caughtUp { notCaughtUp += 1 }
            if outcome.verified { verifiedCount += 1 }
            guard let target = finalTargets[user % rooms].last, tracker.epoch == target.epoch, let first = tracker.firstPosition,
                tracker.refreshes == 0
            else { continue }
            missing += tracker.missing(through: target.offset)
            ackedLost += finalTargets[user % rooms].offsets.filter { $0 > first && !tracker.hasSeen(offset: $0) }.count
        }
        if options.showProgress {
            Progress.write("soak: \(verifiedCount)/\(users) verified, \(ackedLost) acked events lost, \(rawDuplicates) raw duplicates")
        }

        // The rooms empty once the presence grace period has passed.
        let settleStarted = ContinuousClock.now
        let membersLeft = await membersLeft(rooms: rooms, probe: users + 1, context: context)
        // The server closes its side of every connection: its descriptors come back to idle.
        var after = options.serverPID.flatMap(ServerFootprint.read(pid:))
        if let pid = options.serverPID, let before {
            let deadline = ContinuousClock.now + options.soakSettleLimit
            while let now = after, !now.isBack(to: before), ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(200))
                after = ServerFootprint.read(pid: pid)
            }
        }
        let settled = ContinuousClock.now - settleStarted
        let drops = SoakDrops(
            abrupt: counters.value(Slot.abrupt.rawValue), midFrame: counters.value(Slot.midFrame.rawValue),
            afterSend: counters.value(Slot.afterSend.rawValue), graceful: counters.value(Slot.graceful.rawValue),
            byServer: counters.value(Slot.byServer.rawValue), halfHandshakes: counters.value(Slot.halfHandshakes.rawValue))
        let acked = counters.value(Slot.acked.rawValue)
        let notRecovered = counters.value(Slot.notRecovered.rawValue)
        let descriptorsBack = before.map { before in after.map { $0.isBack(to: before) } ?? false } ?? true
        let pass = acked > 0 && ackedLost == 0 && missing == 0 && rawDuplicates == 0 && notCaughtUp == 0 && notRecovered == 0
            && epochChanges == 0 && membersLeft == 0 && descriptorsBack
        return SoakResult(
            users: users, rooms: rooms, durationS: durationSeconds(options.duration), ratePerUser: options.rate,
            maxLifetimeS: durationSeconds(options.soakLifetime), connections: counters.value(Slot.connections.rawValue),
            connectFailures: counters.value(Slot.connectFailures.rawValue), enterFailures: counters.value(Slot.enterFailures.rawValue),
            firstError: firstError.value, drops: drops, acked: acked, errors: counters.value(Slot.errors.rawValue), received: received,
            rawDuplicates: rawDuplicates, firstDuplicate: firstDuplicate, replayedAgain: replayedAgain, notRecovered: notRecovered, epochChanges: epochChanges,
            verified: verifiedCount, notCaughtUp: notCaughtUp, ackedLost: ackedLost, missingEvents: missing, membersLeft: membersLeft,
            serverBefore: before, serverPeak: peak.value, serverAfter: after, settleS: round2(durationSeconds(settled)), cpu: usage, pass: pass)
    }

    /// Descriptors a server opens once, on first use (its database's reader connections, an
    /// event loop group started lazily), are not a leak: a burst of connections that join,
    /// publish and leave comes before the idle footprint is read. Returns that footprint, read
    /// once the server has closed the burst's sockets.
    private static func warmUp(users: Int, context: BenchContext) async -> ServerFootprint? {
        let options = context.options
        guard let pid = options.serverPID else { return nil }
        let idle = ServerFootprint.read(pid: pid)
        let phase = await context.connectAndJoin(
            count: min(users, options.connectConcurrency), firstIndex: users + 2, phase: "soak: warming up"
        ) { _ in "soak-warm-up" }
        for connection in phase.connections {
            try? await connection.configureMessages(room: "soak-warm-up", payloadBytes: options.payloadBytes)
            _ = try? await connection.sendBurst(count: 1, window: 1, timeout: options.replyTimeout)
        }
        await BenchConnection.closeAll(phase.connections)
        var footprint = ServerFootprint.read(pid: pid)
        let deadline = ContinuousClock.now + options.soakSettleLimit
        while let now = footprint, let idle, now.sockets > idle.sockets, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(100))
            footprint = ServerFootprint.read(pid: pid)
        }
        return footprint
    }

    // MARK: One user

    /// One user's churn until `end`; returns its view of its room.
    private static func churn(
        user: Int, room roomIndex: Int, rooms: Int, until end: ContinuousClock.Instant, context: BenchContext, ledger: Ledger,
        counters: SharedCounter, firstError: FirstError
    ) async -> SoakTracker {
        let options = context.options
        let room = room(user, rooms: rooms)
        var tracker = SoakTracker()
        // Users start spread over the first second, not all in the same millisecond.
        try? await Task.sleep(for: .milliseconds(Int.random(in: 0..<1000)))
        while ContinuousClock.now < end {
            if Int.random(in: 0..<10) == 0 {
                await halfHandshake(user: user, context: context)
                counters.add(1, slot: Slot.halfHandshakes.rawValue)
            }
            let connection: BenchConnection
            do {
                connection = try await context.connect(index: user, token: context.token(index: user))
            } catch {
                counters.add(1, slot: Slot.connectFailures.rawValue)
                firstError.set("connect bench-\(user): \(BenchContext.benchError(error))")
                try? await Task.sleep(for: .milliseconds(Int.random(in: 100...500)))
                continue
            }
            counters.add(1, slot: Slot.connections.rawValue)
            do {
                try await connection.configureMessages(room: room, payloadBytes: options.payloadBytes)
                let resuming = tracker.hasJoined
                let ack = try await connection.soakEnter(room: room, tracker: tracker, timeout: options.replyTimeout)
                if resuming {
                    try ack.withUnsafeBytes { bytes in
                        if MessageScanner.contains(roomError, in: bytes) {
                            throw BenchError.errorReply(String(decoding: UnsafeRawBufferPointer(rebasing: bytes.prefix(300)), as: UTF8.self))
                        }
                        if MessageScanner.contains(notRecoveredMarker, in: bytes) { counters.add(1, slot: Slot.notRecovered.rawValue) }
                    }
                }
            } catch {
                counters.add(1, slot: Slot.enterFailures.rawValue)
                firstError.set("join/resume bench-\(user): \(BenchContext.benchError(error))")
                _ = try? await connection.drop().get()
                tracker = await connection.soakTracker() ?? tracker
                continue
            }
            let lifetime = durationSeconds(options.soakLifetime) * Double.random(in: 0.125...1)
            let leaveAt = min(end, ContinuousClock.now + .milliseconds(Int(lifetime * 1000)))
            var closedByServer = false
            while true {
                // Poisson arrivals: exponential gaps with a mean of 1 / rate.
                let gap = -log(Double.random(in: Double.ulpOfOne..<1)) / options.rate
                let sendAt = ContinuousClock.now + .milliseconds(Int(gap * 1000))
                guard sendAt < leaveAt else { break }
                try? await Task.sleep(until: sendAt)
                do {
                    let outcome = try await connection.sendBurst(count: 1, window: 1, timeout: options.replyTimeout)
                    counters.add(outcome.acks, slot: Slot.acked.rawValue)
                    counters.add(outcome.errors, slot: Slot.errors.rawValue)
                    if let position = outcome.lastAck { await ledger.record(room: roomIndex, position: position) }
                } catch {
                    closedByServer = true
                    break
                }
            }
            if closedByServer || !connection.isActive {
                counters.add(1, slot: Slot.byServer.rawValue)
                _ = try? await connection.drop().get()
            } else {
                try? await Task.sleep(until: leaveAt)
                switch Int.random(in: 0..<10) {
                case 0..<4:
                    counters.add(1, slot: Slot.abrupt.rawValue)
                    _ = try? await connection.drop().get()
                case 4..<6:
                    counters.add(1, slot: Slot.midFrame.rawValue)
                    _ = try? await connection.dropMidFrame().get()
                case 6..<8:
                    counters.add(1, slot: Slot.afterSend.rawValue)
                    _ = try? await connection.dropAfterSend().get()
                default:
                    counters.add(1, slot: Slot.graceful.rawValue)
                    _ = try? await connection.close(timeout: .seconds(2)).get()
                }
            }
            tracker = await connection.soakTracker() ?? tracker
            try? await Task.sleep(for: .milliseconds(Int.random(in: 0...300)))
        }
        return tracker
    }

    /// Opens a TCP connection, writes half an upgrade request and closes it.
    private static func halfHandshake(user: Int, context: BenchContext) async {
        let target = context.target(index: user)
        let request = BenchConnection.upgradeRequest(target: target, token: "half")
        let bytes = Array(request.utf8.prefix(request.utf8.count / 2))
        do {
            let channel = try await ClientBootstrap(group: context.group.next())
                .connectTimeout(TimeAmount(context.options.connectTimeout))
                .connect(to: target.socketAddress()).get()
            var buffer = channel.allocator.buffer(capacity: bytes.count)
            buffer.writeBytes(bytes)
            try? await channel.writeAndFlush(buffer).get()
            try? await channel.close().get()
        } catch {
            // Only the server's side of this matters; a refused connect is counted elsewhere.
        }
    }

    // MARK: Verification

    struct Verified: Sendable {
        var tracker: SoakTracker
        var verified: Bool
        var caughtUp: Bool
    }

    /// Every user resumes once more and waits (up to the catch-up timeout) until it has seen its
    /// room up to the room's last acked position.
    private static func verify(
        trackers: [SoakTracker], rooms: Int, targets: [(last: RoomPosition?, offsets: [UInt64])], context: BenchContext
    ) async -> [Verified] {
        let options = context.options
        return await withTaskGroup(of: (Int, Verified).self) { group in
            var results = trackers.map { Verified(tracker: $0, verified: false, caughtUp: false) }
            var next = 0
            func add(_ user: Int) {
                let tracker = trackers[user]
                let target = targets[user % rooms].last
                group.addTask {
                    guard tracker.hasJoined else { return (user, Verified(tracker: tracker, verified: false, caughtUp: false)) }
                    let room = room(user, rooms: rooms)
                    let connection: BenchConnection
                    do {
                        connection = try await context.connect(index: user, token: context.token(index: user))
                        try await connection.soakEnter(room: room, tracker: tracker, timeout: options.replyTimeout)
                    } catch {
                        return (user, Verified(tracker: tracker, verified: false, caughtUp: false))
                    }
                    let deadline = ContinuousClock.now + options.catchUpTimeout
                    var current = tracker
                    while true {
                        current = await connection.soakTracker() ?? current
                        if target.map({ current.hasSeen(through: $0) }) ?? true { break }
                        guard ContinuousClock.now < deadline, connection.isActive else { break }
                        try? await Task.sleep(for: .milliseconds(20))
                    }
                    _ = try? await connection.close(timeout: .seconds(2)).get()
                    current = await connection.soakTracker() ?? current
                    let caughtUp = target.map { current.hasSeen(through: $0) } ?? true
                    return (user, Verified(tracker: current, verified: true, caughtUp: caughtUp))
                }
            }
            while next < min(trackers.count, options.connectConcurrency) {
                add(next)
                next += 1
            }
            for await (user, outcome) in group {
                results[user] = outcome
                if next < trackers.count {
                    add(next)
                    next += 1
                }
            }
            return results
        }
    }

    /// Members still listed in the soak's rooms, asked by one probe connection until there are
    /// none or the settle limit has passed (the presence grace period keeps a user listed for a
    /// while after its last connection ended).
    private static func membersLeft(rooms: Int, probe: Int, context: BenchContext) async -> Int {
        let options = context.options
        guard let connection = try? await context.connect(index: probe, token: context.token(index: probe)) else { return -1 }
        let deadline = ContinuousClock.now + options.soakSettleLimit
        var left = 0
        for room in 0..<rooms {
            _ = try? await connection.join(room: "soak-\(room)", timeout: options.replyTimeout)
        }
        while true {
            left = 0
            for room in 0..<rooms {
                guard let reply = try? await connection.request(event: "room.members", dataJSON: #"{"room":"soak-\#(room)"}"#, timeout: options.replyTimeout)
                else {
                    left += 1
                    continue
                }
                left += reply.withUnsafeBytes { bytes in
                    var count = 0
                    var index = 0
                    while let found = MessageScanner.firstIndex(of: memberMarker, in: bytes, from: index) {
                        count += 1
                        index = found + 1
                    }
                    return count
                }
                // The probe lists itself.
                left -= 1
            }
            if left <= 0 || ContinuousClock.now >= deadline { break }
            try? await Task.sleep(for: .milliseconds(250))
        }
        _ = try? await connection.close(timeout: .seconds(2)).get()
        return max(0, left)
    }

    private static let notRecoveredMarker: [UInt8] = Array(#""recovered":false"#.utf8)
    private static let roomError: [UInt8] = Array(#""error":{"#.utf8)
    private static let memberMarker: [UInt8] = Array(#""bench-"#.utf8)
}

/// The first error message of concurrent tasks.
final class FirstError: @unchecked Sendable {
    // @unchecked Sendable: `text` is only read or written while holding `lock`.
    private let lock = NSLock()
    private var text: String?

    func set(_ message: String) {
        lock.lock()
        if text == nil { text = message }
        lock.unlock()
    }

    var value: String? {
        lock.lock()
        defer { lock.unlock() }
        return text
    }
}

/// The peak of footprints sampled from several tasks.
final class PeakFootprint: @unchecked Sendable {
    // @unchecked Sendable: `peak` is only read or written while holding `lock`.
    private let lock = NSLock()
    private var peak: ServerFootprint?

    init(_ first: ServerFootprint?) { peak = first }

    func add(_ footprint: ServerFootprint) {
        lock.lock()
        peak = peak.map { $0.peak(with: footprint) } ?? footprint
        lock.unlock()
    }

    var value: ServerFootprint? {
        lock.lock()
        defer { lock.unlock() }
        return peak
    }
}
