import Atomics
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// One dedicated pub/sub connection: subscribes to channels, delivers their messages, and after a
/// reconnect subscribes every wanted channel again and says so.
///
/// `run()` (a swift-service-lifecycle `Service`) keeps the connection open, reconnecting with
/// `configuration.reconnectBackoff` (`poolSize` is ignored). The subscriber remembers the set of
/// wanted channels: `subscribe` adds to it, `unsubscribe` removes from it, and each new
/// connection subscribes all of them (in batches of `batchSize`) before `onReconnect` is called.
/// Sharded channels (`ssubscribe`) have a wanted set of their own, handled the same way.
/// Messages published while no connection was subscribed are lost; `onReconnect` is the signal
/// to re-check whatever those messages would have announced.
///
/// `onMessage` runs on the connection's event loop for every message, in order: keep it cheap and
/// never block in it (hand work off if it is heavy).
public final class RedisSubscriber: Service, Sendable {
    /// Channels per `SUBSCRIBE` / `UNSUBSCRIBE` command.
    public static let batchSize = 512

    public let configuration: RedisConfiguration
    /// The event loop of every connection of this subscriber, where `onMessage` runs.
    public let eventLoop: any EventLoop
    private let logger: Logger
    private let onMessage: @Sendable (_ channel: String, _ payload: ByteBuffer) -> Void
    private let onReconnect: @Sendable () -> Void
    private let shutdownSignal = ShutdownSignal()
    private let ready = ManagedAtomic(false)
    private let reconnects = ManagedAtomic(0)
    private let state: NIOLoopBoundBox<State>

    /// Touched on `eventLoop` only.
    private struct State {
        var wanted: Set<String> = []
        var wantedSharded: Set<String> = []
        /// The connection in pub/sub mode, once it exists.
        var connection: RedisConnection?
        var hasConnected = false
    }

    /// - Parameters:
    ///   - onMessage: called on `eventLoop` with the channel and payload of each message.
    ///   - onReconnect: called (on a task, not the event loop) each time a new connection has
    ///     subscribed every wanted channel again after a gap: after every connection but the first,
    ///     and after the first when channels were already wanted before it.
    /// Throws `RedisError.invalidConfiguration` for a configuration that cannot work.
    public init(
        configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "switchboard.redis.pubsub"),
        onMessage: @escaping @Sendable (_ channel: String, _ payload: ByteBuffer) -> Void,
        onReconnect: @escaping @Sendable () -> Void = {}
    ) throws {
        try configuration.validate()
        self.configuration = configuration
        self.eventLoop = eventLoopGroup.next()
        self.logger = logger
        self.onMessage = onMessage
        self.onReconnect = onReconnect
        self.state = NIOLoopBoundBox.makeBoxSendingValue(State(), eventLoop: self.eventLoop)
    }

    /// Whether a connection is open and has confirmed every wanted channel of its start.
    public var isConnected: Bool { ready.load(ordering: .relaxed) }

    /// How many times `onReconnect` was called.
    public var reconnectCount: Int { reconnects.load(ordering: .relaxed) }

    // MARK: - Life cycle

    /// Keeps the pub/sub connection open until `shutdown()`, a graceful shutdown or cancellation;
    /// then closes it and returns. Call it once.
    public func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.maintain() }
                await shutdownSignal.wait()
                group.cancelAll()
                let connection = try? await eventLoop.submit { [state] () -> RedisConnection? in
                    defer { state.value.connection = nil }
                    return state.value.connection
                }.get()
                await connection?.close()
            }
        } onGracefulShutdown: {
            self.shutdown()
        }
    }

    /// Asks `run()` to close the connection and return; does not wait.
    public func shutdown() {
        shutdownSignal.set()
    }

    /// Closes the open connection as if it had dropped: `run()` opens a new one, subscribes every
    /// wanted channel again and calls `onReconnect`. For a connection that is open but no longer
    /// delivers (Redis forgot its subscriptions, or something on the way swallows its bytes),
    /// which nothing else would notice. Returns once that connection is closed; does nothing when
    /// none is open.
    public func reconnect() async {
        let connection = try? await eventLoop.submit { [state] in state.value.connection }.get()
        await connection?.close()
    }

    private func maintain() async {
        var failures = 0
        while !Task.isCancelled && !shutdownSignal.isSet {
            do {
                let connection = try await RedisConnection.connect(configuration: configuration, eventLoop: eventLoop, logger: logger)
                let opened = ContinuousClock.now
                let report = try await install(connection).get()
                if shutdownSignal.isSet {
                    await connection.close()
                    return
                }
                ready.store(true, ordering: .relaxed)
                if report {
                    reconnects.wrappingIncrement(ordering: .relaxed)
                    onReconnect()
                }
                try? await connection.closeFuture.get()
                ready.store(false, ordering: .relaxed)
                if shutdownSignal.isSet { return }
                failures = ContinuousClock.now - opened >= .seconds(1) ? 0 : failures + 1
                logger.info("Redis pub/sub connection closed, reconnecting")
            } catch {
                ready.store(false, ordering: .relaxed)
                failures += 1
                logger.debug("Redis pub/sub connect failed", metadata: ["error": "\(error)"])
            }
            if failures > 0 {
                try? await Task.sleep(for: configuration.reconnectBackoff.delay(afterFailures: failures))
            }
        }
    }

    /// On the event loop: puts `connection` in pub/sub mode, makes it current and subscribes every
    /// wanted channel. The future tells whether to report a reconnect once all are confirmed.
    private func install(_ connection: RedisConnection) -> EventLoopFuture<Bool> {
        eventLoop.flatSubmit { [state, onMessage, logger] in
            connection.enterPubSubMode { channel, payload in onMessage(channel, payload) }
            state.value.connection = connection
            connection.closeFuture.assumeIsolated().whenComplete { _ in
                if state.value.connection === connection { state.value.connection = nil }
            }
            let report = state.value.hasConnected || !state.value.wanted.isEmpty || !state.value.wantedSharded.isEmpty
            state.value.hasConnected = true
            let channels = Array(state.value.wanted)
            let shardChannels = Array(state.value.wantedSharded)
            logger.debug("Redis pub/sub connected", metadata: ["channels": "\(channels.count)", "shard-channels": "\(shardChannels.count)"])
            return Self.send(Kind.plain.subscribe, channels, on: connection)
                .and(Self.send(Kind.sharded.subscribe, shardChannels, on: connection))
                .map { _ in report }
        }
    }

    // MARK: - Subscriptions

    /// Adds `channels` to the wanted set and subscribes them; returns once Redis confirmed every
    /// one, so a message published after it returns is delivered.
    ///
    /// Throws `RedisError.unavailable` when no connection is open, or the error of the connection
    /// that failed meanwhile (`.connectionClosed`, `.timeout`). Either way the channels stay
    /// wanted: the next connection subscribes them and then calls `onReconnect`.
    public func subscribe(_ channels: [String]) async throws {
        try await change(.plain, adding: channels)
    }

    /// Removes `channels` from the wanted set and unsubscribes them; returns once Redis confirmed
    /// (at once when no connection is open: the next one will not subscribe them).
    /// Messages of these channels may still arrive until it returns.
    public func unsubscribe(_ channels: [String]) async throws {
        try await change(.plain, removing: channels)
    }

    /// `subscribe` for sharded channels (`SSUBSCRIBE`, Redis 7+; published with `SPUBLISH`),
    /// kept in a wanted set of their own and re-subscribed the same way. Their messages reach
    /// the same `onMessage`. Standalone Redis only for now: in a cluster, one `SSUBSCRIBE` must
    /// name channels of a single slot, which this does not arrange.
    public func ssubscribe(_ channels: [String]) async throws {
        try await change(.sharded, adding: channels)
    }

    /// `unsubscribe` for sharded channels (`SUNSUBSCRIBE`).
    public func sunsubscribe(_ channels: [String]) async throws {
        try await change(.sharded, removing: channels)
    }

    /// The channels wanted now (subscribed, or to be subscribed by the next connection).
    public func wantedChannels() async throws -> Set<String> {
        try await eventLoop.submit { [state] in state.value.wanted }.get()
    }

    /// The sharded channels wanted now.
    public func wantedShardChannels() async throws -> Set<String> {
        try await eventLoop.submit { [state] in state.value.wantedSharded }.get()
    }

    private enum Kind: Sendable {
        case plain, sharded

        var subscribe: String { self == .plain ? "SUBSCRIBE" : "SSUBSCRIBE" }
        var unsubscribe: String { self == .plain ? "UNSUBSCRIBE" : "SUNSUBSCRIBE" }
    }

    private func change(_ kind: Kind, adding channels: [String]) async throws {
        guard !channels.isEmpty else { return }
        try await eventLoop.flatSubmit { [state, eventLoop] () -> EventLoopFuture<Void> in
            switch kind {
            case .plain: state.value.wanted.formUnion(channels)
            case .sharded: state.value.wantedSharded.formUnion(channels)
            }
            guard let connection = state.value.connection, connection.isActive else {
                return eventLoop.makeFailedFuture(RedisError.unavailable)
            }
            // Sent even for channels already wanted: confirmation then means "subscribed now".
            return Self.send(kind.subscribe, channels, on: connection)
        }.get()
    }

    private func change(_ kind: Kind, removing channels: [String]) async throws {
        guard !channels.isEmpty else { return }
        try await eventLoop.flatSubmit { [state, eventLoop] () -> EventLoopFuture<Void> in
            switch kind {
            case .plain: state.value.wanted.subtract(channels)
            case .sharded: state.value.wantedSharded.subtract(channels)
            }
            guard let connection = state.value.connection, connection.isActive else {
                return eventLoop.makeSucceededVoidFuture()
            }
            return Self.send(kind.unsubscribe, channels, on: connection)
        }.get()
    }

    /// `command` for `channels` in batches of `batchSize`; succeeds when all are confirmed.
    private static func send(_ command: String, _ channels: [String], on connection: RedisConnection) -> EventLoopFuture<Void> {
        guard !channels.isEmpty else { return connection.eventLoop.makeSucceededVoidFuture() }
        var futures: [EventLoopFuture<Void>] = []
        var start = 0
        while start < channels.count {
            let batch = channels[start..<min(start + batchSize, channels.count)]
            futures.append(connection.enqueuePubSub(
                RESPCommand(command, arguments: batch.map { RESPCommandArgument($0) }), confirmations: batch.count))
            start += batchSize
        }
        return EventLoopFuture.andAllSucceed(futures, on: connection.eventLoop)
    }
}
