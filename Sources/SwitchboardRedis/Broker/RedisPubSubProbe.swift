import Atomics
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// The end-to-end check of a node's pub/sub connection: a probe published through the command
/// pool to a channel only this node subscribes must come back on the pub/sub connection.
///
/// An open connection proves nothing: after a failover a subscriber can stay connected to a
/// server that no longer has its subscriptions (or never sees the publishes) while publishes
/// succeed and every health check stays green (centrifugo#1189). Only a message that comes back
/// proves delivery. The probe goes on the same connection as the rooms' messages, but on a
/// channel of its own, so room delivery never sees it.
final class RedisPubSubProbe: Sendable {
    /// The node's own channel, subscribed for as long as the broker runs.
    let channel: String
    private let client: RedisClient
    private let pubsub: RedisSubscriber
    private let timeout: Duration
    private let logger: Logger
    private let nextToken = ManagedAtomic<UInt64>(0)
    /// Probes waiting for their message, by token. Whoever removes a promise completes it (the
    /// message, the timeout, or the probe itself when it gave up), so each completes once.
    private let pending = NIOLockedValueBox<[UInt64: EventLoopPromise<Void>]>([:])
    /// Messages the pub/sub connection received, of any channel.
    private let messages = ManagedAtomic<UInt64>(0)
    /// `messages` at the previous idle check.
    private let messagesAtLastCheck = ManagedAtomic<UInt64>(0)
    private let confirmed = ManagedAtomic(true)

    init(channel: String, client: RedisClient, pubsub: RedisSubscriber, timeout: Duration, logger: Logger) {
        self.channel = channel
        self.client = client
        self.pubsub = pubsub
        self.timeout = timeout
        self.logger = logger
    }

    /// Whether the last probe came back (`true` before the first one).
    var isConfirmed: Bool { confirmed.load(ordering: .relaxed) }

    /// On the pub/sub loop, once per message of any channel: the connection delivers. A relaxed
    /// increment, so that the idle check costs the delivery path nothing more.
    func noteMessage() {
        messages.wrappingIncrement(ordering: .relaxed)
    }

    /// On the pub/sub loop: a message of ``channel``.
    func received(_ payload: ByteBuffer) {
        guard let token = UInt64(String(buffer: payload)) else {
            logger.warning("malformed probe message on the node's channel", metadata: ["channel": "\(channel)"])
            return
        }
        pending.withLockedValue { $0.removeValue(forKey: token) }?.succeed()
    }

    /// One turn of the timer: probes when the connection received nothing since the previous
    /// turn (traffic proves delivery by itself), or while the last probe failed.
    func probeIfIdle() async {
        let seen = messages.load(ordering: .relaxed)
        let previous = messagesAtLastCheck.exchange(seen, ordering: .relaxed)
        guard seen == previous || !isConfirmed else { return }
        // While the connection is down there is nothing to probe: readiness says so already.
        guard pubsub.isConnected else { return }
        _ = await probe()
    }

    /// Publishes a probe and waits, bounded by the timeout, for it to come back. Returns whether
    /// it did. When it was published but did not come back (or Redis had no subscriber for it),
    /// the pub/sub connection is wedged: it is dropped, and its reconnect re-subscribes every
    /// channel and catches every room up. Until a probe comes back again, ``isConfirmed`` is
    /// false.
    func probe() async -> Bool {
        guard pubsub.isConnected else { return false }
        // A reconnect during the probe explains a lost probe: that connection is gone already.
        let generation = pubsub.reconnectCount
        let token = nextToken.loadThenWrappingIncrement(ordering: .relaxed)
        let loop = pubsub.eventLoop
        let promise = loop.makePromise(of: Void.self)
        pending.withLockedValue { $0[token] = promise }
        var failure: String?
        var wedged = false
        do {
            let receivers = try await client.send(
                RESPCommand("PUBLISH", arguments: [RESPCommandArgument(channel), RESPCommandArgument(token)]), timeout: timeout)
            if receivers.int == 0 {
                failure = "Redis has no subscriber for the node's channel"
                wedged = true
            } else {
                let pending = self.pending
                let timer = loop.scheduleTask(in: TimeAmount(timeout)) {
                    pending.withLockedValue { $0.removeValue(forKey: token) }?.fail(RedisError.timeout)
                }
                do {
                    try await promise.futureResult.get()
                } catch {
                    failure = "the probe did not come back within \(timeout)"
                    wedged = true
                }
                timer.cancel()
            }
        } catch {
            failure = "the probe could not be published: \(error)"
        }
        pending.withLockedValue { $0.removeValue(forKey: token) }?.fail(RedisError.unavailable)
        guard let failure else {
            if !confirmed.exchange(true, ordering: .relaxed) {
                logger.info("Redis pub/sub delivers again", metadata: ["channel": "\(channel)"])
            }
            return true
        }
        confirmed.store(false, ordering: .relaxed)
        if wedged && pubsub.reconnectCount == generation && pubsub.isConnected {
            logger.error("Redis pub/sub connection delivers nothing; reconnecting", metadata: ["reason": "\(failure)"])
            await pubsub.reconnect()
        } else {
            logger.warning("Redis pub/sub probe failed", metadata: ["reason": "\(failure)"])
        }
        return false
    }
}
