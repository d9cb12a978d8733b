import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle

/// A small pool of Redis command connections that reconnects by itself.
///
/// `run()` (a swift-service-lifecycle `Service`) opens `configuration.poolSize` connections and
/// keeps them open: a connection that drops is reopened at once, and failed attempts are retried
/// with `configuration.reconnectBackoff`. `run()` returns after `shutdown()`, a graceful
/// shutdown or cancellation, with every connection closed.
///
/// Commands go to the open connection with the fewest commands pending. While no connection is
/// open (before the first connect, during an outage, after shutdown) commands fail at once with
/// `RedisError.unavailable`: nothing queues, nothing hangs. A command that was sent is not
/// retried on another connection when its own fails (it may have run).
///
/// ```swift
/// let client = try RedisClient(configuration: RedisConfiguration(url: "redis://127.0.0.1:6379"))
/// // add `client` to a ServiceGroup, or: Task { try await client.run() }
/// try await client.waitUntilConnected(timeout: .seconds(5))
/// _ = try await client.send("SET", "greeting", "hello")
/// ```
public final class RedisClient: Service, Sendable {
    public let configuration: RedisConfiguration
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let shutdownSignal = ShutdownSignal()
    private let state: NIOLockedValueBox<State>

    private struct State {
        var slots: [RedisConnection?]
        var next = 0
        var isRunning = false
        /// SCRIPT LOAD's SHA1 of each script's source.
        var scriptHashes: [String: String] = [:]
    }

    /// Throws `RedisError.invalidConfiguration` for a configuration that cannot work.
    public init(
        configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "switchboard.redis")
    ) throws {
        try configuration.validate()
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.state = NIOLockedValueBox(State(slots: Array(repeating: nil, count: configuration.poolSize)))
    }

    // MARK: - Life cycle

    /// Keeps the pool connected until `shutdown()`, a graceful shutdown or cancellation; then
    /// closes every connection and returns. Call it once.
    public func run() async throws {
        let alreadyRunning = state.withLockedValue { state -> Bool in
            defer { state.isRunning = true }
            return state.isRunning
        }
        guard !alreadyRunning else { throw RedisError.invalidConfiguration("RedisClient.run() called twice") }
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                for slot in 0..<configuration.poolSize {
                    group.addTask { await self.maintain(slot: slot) }
                }
                await shutdownSignal.wait()
                group.cancelAll()
                let open = state.withLockedValue { state -> [RedisConnection] in
                    defer { state.slots = Array(repeating: nil, count: state.slots.count) }
                    return state.slots.compactMap { $0 }
                }
                for connection in open { await connection.close() }
            }
        } onGracefulShutdown: {
            self.shutdown()
        }
    }

    /// Asks `run()` to close the connections and return. Commands fail with `.unavailable` from
    /// now on. Does not wait; `run()` returning means everything is closed.
    public func shutdown() {
        shutdownSignal.set()
    }

    /// Waits until at least one connection is open; throws `RedisError.unavailable` after
    /// `timeout`. (It checks every 10 ms.)
    public func waitUntilConnected(timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while !isConnected {
            guard ContinuousClock.now < deadline, !shutdownSignal.isSet else { throw RedisError.unavailable }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Whether at least one connection is open.
    public var isConnected: Bool { openConnectionCount > 0 }

    /// How many of the pool's connections are open now.
    public var openConnectionCount: Int {
        state.withLockedValue { state in state.slots.reduce(0) { $0 + (($1?.isActive ?? false) ? 1 : 0) } }
    }

    /// One slot of the pool: connect, wait for the connection to close, reconnect.
    private func maintain(slot: Int) async {
        var failures = 0
        while !Task.isCancelled && !shutdownSignal.isSet {
            do {
                let connection = try await RedisConnection.connect(
                    configuration: configuration, eventLoop: eventLoopGroup.next(), logger: logger)
                let installed = state.withLockedValue { state -> Bool in
                    guard !shutdownSignal.isSet else { return false }
                    state.slots[slot] = connection
                    return true
                }
                guard installed else {
                    await connection.close()
                    return
                }
                let opened = ContinuousClock.now
                try? await connection.closeFuture.get()
                state.withLockedValue { state in
                    if state.slots[slot] === connection { state.slots[slot] = nil }
                }
                if shutdownSignal.isSet { return }
                // A connection that lived a while is reopened at once; one that closed right
                // away counts as a failure, so a server that drops every connection is not
                // hammered in a tight loop.
                failures = ContinuousClock.now - opened >= .seconds(1) ? 0 : failures + 1
                logger.info("Redis connection closed, reconnecting", metadata: ["slot": "\(slot)"])
            } catch {
                failures += 1
                logger.debug("Redis connect failed", metadata: ["slot": "\(slot)", "error": "\(error)"])
            }
            if failures > 0 {
                try? await Task.sleep(for: configuration.reconnectBackoff.delay(afterFailures: failures))
            }
        }
    }

    /// The open connection with the fewest pending commands (round-robin among equals); with an
    /// `affinity`, the same connection for the same affinity while it stays open.
    private func pickConnection(affinity: String? = nil) -> RedisConnection? {
        guard !shutdownSignal.isSet else { return nil }
        return state.withLockedValue { state -> RedisConnection? in
            let count = state.slots.count
            if let affinity, count > 0 {
                var hasher = Hasher()
                hasher.combine(affinity)
                let index = Int(UInt(bitPattern: hasher.finalize()) % UInt(count))
                if let connection = state.slots[index], connection.isActive { return connection }
            }
            var best: RedisConnection?
            var bestPending = Int.max
            for offset in 0..<count {
                guard let connection = state.slots[(state.next + offset) % count], connection.isActive else { continue }
                let pending = connection.pendingCount
                if pending < bestPending {
                    best = connection
                    bestPending = pending
                }
            }
            state.next = (state.next + 1) % count
            return best
        }
    }

    /// The pool's connections open now (tests reach single connections through it).
    func openConnections() -> [RedisConnection] {
        state.withLockedValue { $0.slots.compactMap { $0 }.filter(\.isActive) }
    }

    // MARK: - Commands

    /// Sends `command` on one of the pool's connections and returns its reply.
    ///
    /// Commands sent with the same `affinity` go on the same connection while it stays open, so
    /// Redis runs them in the order they were sent (e.g. a join and the leave after it).
    ///
    /// Throws `RedisError.unavailable` at once when no connection is open, and otherwise as
    /// `RedisConnection.send` does (`.server`, `.timeout`, `.connectionClosed`, `.protocolError`).
    public func send(_ command: RESPCommand, timeout: Duration? = nil, affinity: String? = nil) async throws -> RESPValue {
        guard let connection = pickConnection(affinity: affinity) else { throw RedisError.unavailable }
        return try await connection.send(command, timeout: timeout)
    }

    /// `send(RESPCommand(name, arguments…))`.
    public func send(_ name: String, _ arguments: RESPCommandArgument...) async throws -> RESPValue {
        try await send(RESPCommand(name, arguments: arguments))
    }

    /// Sends `commands` on one of the pool's connections in one write, without waiting for a
    /// reply before the next, and returns their replies in order: many small reads cost one round
    /// trip. Redis runs them in this order (another client's commands may come in between).
    ///
    /// Throws `RedisError.unavailable` at once when no connection is open; otherwise the first
    /// error among the replies, as `send` does (`.server` for an error reply).
    public func pipeline(_ commands: [RESPCommand], timeout: Duration? = nil) async throws -> [RESPValue] {
        guard !commands.isEmpty else { return [] }
        guard let connection = pickConnection() else { throw RedisError.unavailable }
        // Enqueued in one turn of the connection's loop, so they share one flush.
        let futures = try await connection.eventLoop.submit {
            commands.map { connection.enqueue($0, timeout: timeout) }
        }.get()
        var replies: [RESPValue] = []
        replies.reserveCapacity(futures.count)
        for future in futures { replies.append(try await future.get()) }
        return replies
    }

    /// Runs `script` with `EVALSHA` and returns its reply.
    ///
    /// The first call loads the script (`SCRIPT LOAD`) and caches its SHA1; when the server does
    /// not know the SHA1 (`NOSCRIPT`: restarted, `SCRIPT FLUSH`, failover) the script is loaded
    /// again and the call retried once. Errors as `send`; a Lua error is `.server`.
    public func eval(
        _ script: RedisScript, keys: [RESPCommandArgument] = [], arguments: [RESPCommandArgument] = [], affinity: String? = nil
    ) async throws -> RESPValue {
        let cached = state.withLockedValue { $0.scriptHashes[script.source] }
        let hash: String
        if let cached {
            hash = cached
        } else {
            hash = try await load(script)
        }
        do {
            return try await send(Self.evalsha(hash, keys: keys, arguments: arguments), affinity: affinity)
        } catch let error as RedisError where error.serverErrorCode == "NOSCRIPT" {
            let reloaded = try await load(script)
            return try await send(Self.evalsha(reloaded, keys: keys, arguments: arguments), affinity: affinity)
        }
    }

    /// Runs `script` like ``eval(_:keys:arguments:affinity:)``, without suspending: the future
    /// completes on `eventLoop`.
    ///
    /// Calls with the same `affinity` made one after the other (from one event loop, say) reach
    /// Redis in that order, so a caller may issue the next before the previous has answered and
    /// still have them run in order. The one exception is a script cache emptied under it
    /// (`SCRIPT FLUSH`): the calls that get `NOSCRIPT` are sent again, after those that did not.
    public func evalInOrder(
        _ script: RedisScript, keys: [RESPCommandArgument], arguments: [RESPCommandArgument], affinity: String, on eventLoop: any EventLoop
    ) -> EventLoopFuture<RESPValue> {
        guard let connection = pickConnection(affinity: affinity) else {
            return eventLoop.makeFailedFuture(RedisError.unavailable)
        }
        let hash = state.withLockedValue { $0.scriptHashes[script.source] }
        // Without the SHA1 yet, the script's text goes with the call (`EVAL`): loading it first
        // would let a later call that finds the SHA1 overtake this one.
        let command =
            hash.map { Self.evalsha($0, keys: keys, arguments: arguments) }
            ?? RESPCommand("EVAL", arguments: [RESPCommandArgument(script.source), RESPCommandArgument(keys.count)] + keys + arguments)
        if hash == nil { rememberHash(of: script) }
        return connection.enqueue(command).flatMapError { error in
            guard let redisError = error as? RedisError, redisError.serverErrorCode == "NOSCRIPT" else {
                return connection.eventLoop.makeFailedFuture(error)
            }
            return connection.enqueue(RESPCommand("EVAL", arguments: [RESPCommandArgument(script.source), RESPCommandArgument(keys.count)] + keys + arguments))
        }.hop(to: eventLoop)
    }

    /// Sends `command` like ``send(_:timeout:affinity:)``, without suspending: the future completes
    /// on `eventLoop`. Calls with the same `affinity` made one after the other reach Redis in order.
    public func enqueue(_ command: RESPCommand, affinity: String, on eventLoop: any EventLoop) -> EventLoopFuture<RESPValue> {
        guard let connection = pickConnection(affinity: affinity) else {
            return eventLoop.makeFailedFuture(RedisError.unavailable)
        }
        return connection.enqueue(command).hop(to: eventLoop)
    }

    /// Loads `script` in the background, so that later calls send its SHA1.
    private func rememberHash(of script: RedisScript) {
        guard let connection = pickConnection() else { return }
        connection.enqueue(RESPCommand("SCRIPT", "LOAD", RESPCommandArgument(script.source))).whenSuccess { [state] reply in
            guard let hash = reply.string else { return }
            state.withLockedValue { $0.scriptHashes[script.source] = hash }
        }
    }

    private func load(_ script: RedisScript) async throws -> String {
        let reply = try await send("SCRIPT", "LOAD", RESPCommandArgument(script.source))
        guard let hash = reply.string else {
            throw RedisError.protocolError("SCRIPT LOAD answered \(reply)")
        }
        state.withLockedValue { $0.scriptHashes[script.source] = hash }
        return hash
    }

    private static func evalsha(_ hash: String, keys: [RESPCommandArgument], arguments: [RESPCommandArgument]) -> RESPCommand {
        RESPCommand("EVALSHA", arguments: [RESPCommandArgument(hash), RESPCommandArgument(keys.count)] + keys + arguments)
    }
}
