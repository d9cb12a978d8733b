import Foundation
import NIOCore
import NIOPosix
import Switchboard

/// What a scenario works with: the options, the targets, the event loops and their stats, and
/// the operations that open connections in bounded batches.
struct BenchContext: Sendable {
    let options: BenchOptions
    /// The server's nodes (at least one): connection `index` goes to `targets[index % count]`.
    let targets: [BenchTarget]
    /// The publisher's node, when ``BenchOptions/publisherURL`` names one.
    let publisherTarget: BenchTarget?
    let group: MultiThreadedEventLoopGroup
    let stats: EventLoopStats
    let loopThreads: [Int32]
    private let minter: TokenMinter

    init(
        options: BenchOptions, targets: [BenchTarget], publisherTarget: BenchTarget? = nil, group: MultiThreadedEventLoopGroup,
        stats: EventLoopStats, loopThreads: [Int32]
    ) {
        precondition(!targets.isEmpty, "a bench needs a target")
        self.options = options
        self.targets = targets
        self.publisherTarget = publisherTarget
        self.group = group
        self.stats = stats
        self.loopThreads = loopThreads
        minter = TokenMinter(hs256Secret: options.jwtSecret)
    }

    /// Starts a CPU window covering the bench, its loop threads and the server.
    func cpuWindow() -> CPUWindow {
        CPUWindow(serverPID: options.serverPID, loopThreads: loopThreads, cores: loopThreads.count)
    }

    /// A token for user `bench-<index>`.
    func token(index: Int) async throws -> String {
        try await minter.mint(subject: "bench-\(index)", ttl: options.tokenTTL)
    }

    /// The context the publisher connects through: its own node when one was named.
    var forPublisher: BenchContext {
        guard let publisherTarget else { return self }
        return BenchContext(options: options, targets: [publisherTarget], group: group, stats: stats, loopThreads: loopThreads)
    }

    /// The node user `index` connects to: round-robin over the targets.
    func target(index: Int) -> BenchTarget {
        targets[Int(index.magnitude % UInt(targets.count))]
    }

    /// Opens one connection (upgrade done) for user `index` to its node, on the next loop.
    func connect(index: Int, token: String) async throws -> BenchConnection {
        try await BenchConnection.connect(
            index: index, token: token, target: target(index: index), loop: group.next(), stats: stats, timeout: options.connectTimeout,
            compression: options.compression)
    }

    /// Opens `count` connections for users `bench-<firstIndex + i>` and joins connection i to
    /// `room(i)`, with at most `connectConcurrency` attempts in flight. A failed connect is tried
    /// twice more (not after a 401/403), then counted as failed. Connections not started within
    /// `connectPhaseLimit` count as failed too.
    func connectAndJoin(count: Int, firstIndex: Int, phase: String, room: @escaping @Sendable (Int) -> String?) async -> ConnectPhase {
        let replyTimeout = options.replyTimeout
        let users = Array(firstIndex..<(firstIndex + count))
        return await connectEach(users: users, phase: phase, ready: "connected and joined") { position, connection in
            guard let room = room(position) else { return }
            try await connection.join(room: room, timeout: replyTimeout)
        }
    }

    /// Opens one connection per user `bench-<users[i]>` and runs `prepare(i, connection)` on
    /// connection i (a join, a resume), with the rules of ``connectAndJoin(count:firstIndex:phase:room:)``.
    /// A connection whose `prepare` throws is closed and counted as failed (not tried again).
    /// `ready` names the finished state in progress lines ("connected and joined").
    func connectEach(
        users: [Int], phase: String, ready: String,
        prepare: @escaping @Sendable (Int, BenchConnection) async throws -> Void
    ) async -> ConnectPhase {
        let count = users.count
        let started = NIODeadline.now()
        let phaseDeadline = started + TimeAmount(options.connectPhaseLimit)
        let counter = SharedCounter(slots: 2)
        let line: @Sendable () async -> String = {
            "\(phase): \(counter.value(0))/\(count) \(ready), \(counter.value(1)) failed"
        }
        let outcome = try? await Progress.during(options.showProgress, line) {
            await withTaskGroup(of: Result<BenchConnection, BenchError>.self) { tasks in
                var connections: [BenchConnection] = []
                connections.reserveCapacity(count)
                var failed = 0
                var firstError: String?
                var next = 0
                func addTask(_ position: Int) {
                    tasks.addTask { await self.openAndPrepare(index: users[position], position: position, prepare: prepare) }
                }
                while next < min(count, options.connectConcurrency) {
                    addTask(next)
                    next += 1
                }
                while let result = await tasks.next() {
                    switch result {
                    case .success(let connection):
                        connections.append(connection)
                        counter.add(1, slot: 0)
                    case .failure(let error):
                        failed += 1
                        counter.add(1, slot: 1)
                        if firstError == nil { firstError = error.description }
                    }
                    if next < count {
                        if NIODeadline.now() < phaseDeadline {
                            addTask(next)
                            next += 1
                        } else {
                            failed += count - next
                            firstError = firstError ?? "connect phase limit (\(secondsText(options.connectPhaseLimit))) reached"
                            next = count
                        }
                    }
                }
                connections.sort { $0.index < $1.index }
                return ConnectPhase(connections: connections, failed: failed, firstError: firstError, started: started)
            }
        }
        return outcome ?? ConnectPhase(connections: [], failed: count, firstError: "cancelled", started: started)
    }

    private func openAndPrepare(
        index: Int, position: Int, prepare: @Sendable (Int, BenchConnection) async throws -> Void
    ) async -> Result<BenchConnection, BenchError> {
        var lastError = BenchError.setupFailed("not attempted")
        for attempt in 0..<3 {
            if attempt > 0 { try? await Task.sleep(for: .milliseconds(200 * attempt)) }
            let connection: BenchConnection
            do {
                connection = try await connect(index: index, token: token(index: index))
            } catch {
                lastError = Self.benchError(error)
                if case .handshakeRejected(let status, _) = lastError, status == 401 || status == 403 { break }
                continue
            }
            do {
                try await prepare(position, connection)
                return .success(connection)
            } catch {
                _ = connection.close(timeout: .milliseconds(500))
                return .failure(Self.benchError(error))
            }
        }
        return .failure(lastError)
    }

    static func benchError(_ error: any Error) -> BenchError {
        if let error = error as? BenchError { return error }
        return .connectionClosed(String(describing: error))
    }

    /// Waits until no message has arrived for `quiet` (the server finished sending what was in
    /// flight, e.g. presence announcements after many joins), at most `limit`.
    func waitUntilQuiet(quiet: Duration = .milliseconds(500), limit: Duration) async {
        let deadline = ContinuousClock.now + limit
        var last = await stats.counters().messagesReceived
        var lastChange = ContinuousClock.now
        while ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(100))
            let current = await stats.counters().messagesReceived
            if current != last {
                last = current
                lastChange = ContinuousClock.now
            } else if ContinuousClock.now - lastChange >= quiet {
                return
            }
        }
    }
}

/// The connections a connect phase opened, and what failed.
struct ConnectPhase: Sendable {
    var connections: [BenchConnection]
    var failed: Int
    var firstError: String?
    var started: NIODeadline
    let finished = NIODeadline.now()

    var summary: ConnectSummary {
        ConnectSummary(
            requested: connections.count + failed, connected: connections.count, failed: failed,
            seconds: round2(Double((finished - started).nanoseconds) / 1e9), firstError: firstError)
    }
}

/// How the connect phase of a scenario went.
public struct ConnectSummary: Sendable, Codable, Equatable {
    /// Connections attempted.
    public var requested: Int
    /// Connections open and joined.
    public var connected: Int
    /// Connections that failed (after retries).
    public var failed: Int
    /// Time the phase took.
    public var seconds: Double
    /// The first failure, if any.
    public var firstError: String?
}
