import Atomics
import Logging
import NIOCore
import NIOPosix

/// One connection to Redis: commands are pipelined (sent without waiting for earlier replies,
/// replies matched in order) and automatically batched (every command issued in one event-loop
/// turn goes out in a single write and flush).
///
/// Every command has a deadline (`RedisConfiguration.commandTimeout` unless given): when it
/// passes, the command fails with `RedisError.timeout` and the connection is closed, failing the
/// other pending commands with `.connectionClosed`, because a late reply would otherwise be taken
/// for the next command's. A connection that closes for any reason fails everything pending, and
/// every later command, with `.connectionClosed`; it does not reconnect (`RedisClient` does).
///
/// Thread-safe: commands may be sent from any thread or task.
public final class RedisConnection: Sendable {
    /// The event loop the connection's channel runs on.
    public let eventLoop: any EventLoop
    /// The configuration the connection was opened with.
    public let configuration: RedisConfiguration
    let channel: any Channel
    private let handler: NIOLoopBound<RedisChannelHandler>
    private let pendingCounter: ManagedAtomic<Int>

    private init(channel: any Channel, handler: NIOLoopBound<RedisChannelHandler>, pendingCounter: ManagedAtomic<Int>, configuration: RedisConfiguration) {
        self.channel = channel
        self.eventLoop = channel.eventLoop
        self.handler = handler
        self.pendingCounter = pendingCounter
        self.configuration = configuration
    }

    /// Opens a connection and runs its handshake: `HELLO 3` (with the credentials) for RESP3, else
    /// `AUTH` when a password is set; then `SELECT` when `database` is not 0.
    ///
    /// Throws `RedisError.connectFailed` when the TCP connection cannot be opened, `.server` when
    /// the handshake is refused (`WRONGPASS`, `NOAUTH`, a database out of range), `.timeout` or
    /// `.connectionClosed` when it does not complete, `.invalidConfiguration` for a configuration
    /// that cannot work. Nothing stays open when it throws.
    public static func connect(
        configuration: RedisConfiguration,
        eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.any(),
        logger: Logger = Logger(label: "switchboard.redis")
    ) async throws -> RedisConnection {
        try configuration.validate()
        let limits = configuration.decoderLimits
        let counter = ManagedAtomic(0)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: eventLoop)
                .connectTimeout(TimeAmount(configuration.connectTimeout))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        try sync.addHandler(ByteToMessageHandler(RESPDecoder(limits: limits)))
                        try sync.addHandler(RedisChannelHandler(logger: logger, pendingCount: counter))
                    }
                }
                .connect(host: configuration.host, port: configuration.port)
                .get()
        } catch {
            throw RedisError.connectFailed("\(configuration.host):\(configuration.port): \(error)")
        }
        let connection: RedisConnection
        do {
            let handler = try await channel.eventLoop.submit {
                NIOLoopBound(try channel.pipeline.syncOperations.handler(type: RedisChannelHandler.self), eventLoop: channel.eventLoop)
            }.get()
            connection = RedisConnection(channel: channel, handler: handler, pendingCounter: counter, configuration: configuration)
        } catch {
            try? await channel.close()
            throw RedisError.connectionClosed
        }
        do {
            try await connection.handshake()
        } catch {
            await connection.close()
            throw error
        }
        return connection
    }

    private func handshake() async throws {
        var commands: [RESPCommand] = []
        let config = configuration
        switch config.protocolVersion {
        case .resp3:
            if let password = config.password {
                commands.append(RESPCommand("HELLO", "3", "AUTH", RESPCommandArgument(config.username ?? "default"), RESPCommandArgument(password)))
            } else {
                commands.append(RESPCommand("HELLO", "3"))
            }
        case .resp2:
            if let password = config.password {
                if let username = config.username {
                    commands.append(RESPCommand("AUTH", RESPCommandArgument(username), RESPCommandArgument(password)))
                } else {
                    commands.append(RESPCommand("AUTH", RESPCommandArgument(password)))
                }
            }
        }
        if config.database != 0 {
            commands.append(RESPCommand("SELECT", RESPCommandArgument(config.database)))
        }
        let timeout = TimeAmount(config.connectTimeout)
        let futures = commands.map { enqueue($0, timeAmount: timeout) }
        for future in futures { _ = try await future.get() }
    }

    /// Sends `command` and returns its reply.
    ///
    /// Throws `RedisError.server` for an error reply (the connection stays usable), `.timeout`
    /// after `timeout` (default: the configuration's `commandTimeout`), `.connectionClosed` when the
    /// connection is or gets closed first, `.protocolError` when the server broke the protocol.
    public func send(_ command: RESPCommand, timeout: Duration? = nil) async throws -> RESPValue {
        try await enqueue(command, timeout: timeout).get()
    }

    /// `send(RESPCommand(name, arguments…))`.
    public func send(_ name: String, _ arguments: RESPCommandArgument...) async throws -> RESPValue {
        try await send(RESPCommand(name, arguments: arguments))
    }

    /// Sends `command` without suspending: the future completes on `eventLoop` with the reply, or
    /// fails as `send` throws. Commands enqueued in one event-loop turn share one flush.
    public func enqueue(_ command: RESPCommand, timeout: Duration? = nil) -> EventLoopFuture<RESPValue> {
        enqueue(command, timeAmount: TimeAmount(timeout ?? configuration.commandTimeout))
    }

    func enqueue(_ command: RESPCommand, timeAmount timeout: TimeAmount) -> EventLoopFuture<RESPValue> {
        let promise = eventLoop.makePromise(of: RESPValue.self)
        let expectation = RedisChannelHandler.Expectation.reply(promise)
        if eventLoop.inEventLoop {
            handler.value.send(command, expecting: expectation, timeout: timeout)
        } else {
            eventLoop.execute { [handler] in
                handler.value.send(command, expecting: expectation, timeout: timeout)
            }
        }
        return promise.futureResult
    }

    /// Sends a pub/sub command (`SUBSCRIBE a b…`) that is answered by `confirmations` pushes.
    /// Only on a connection in pub/sub mode.
    func enqueuePubSub(_ command: RESPCommand, confirmations: Int) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        let timeout = TimeAmount(configuration.commandTimeout)
        eventLoop.execute { [handler] in
            handler.value.send(command, expecting: .confirmations(remaining: confirmations, promise), timeout: timeout)
        }
        return promise.futureResult
    }

    /// Switches the connection to pub/sub mode: from now on `onMessage` gets every message (on the
    /// event loop) and only pub/sub commands may be sent. Call on the event loop.
    func enterPubSubMode(onMessage: @escaping (String, ByteBuffer) -> Void) {
        handler.value.onPubSubMessage = onMessage
    }

    /// Commands sent and not answered yet.
    public var pendingCount: Int { pendingCounter.load(ordering: .relaxed) }

    /// Whether the connection is open. A closed connection stays closed.
    public var isActive: Bool { channel.isActive }

    /// Completes when the connection has closed, for whatever reason.
    public var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    /// Closes the connection; pending commands fail with `.connectionClosed`. Returns once closed.
    public func close() async {
        channel.close(promise: nil)
        try? await channel.closeFuture.get()
    }

    /// What the handler counted so far (tests observe automatic pipelining with it).
    func statistics() async throws -> RedisChannelHandler.Statistics {
        try await eventLoop.submit { [handler] in handler.value.statistics }.get()
    }
}
