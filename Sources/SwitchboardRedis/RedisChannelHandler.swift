import Atomics
import Logging
import NIOCore

/// The channel handler behind a `RedisConnection`: it encodes commands, matches replies to them
/// in order, batches writes per event-loop turn, enforces command deadlines and, in pub/sub mode,
/// delivers messages.
///
/// It lives on its channel's event loop and is only touched there (`RedisConnection` reaches it
/// through a `NIOLoopBound`).
final class RedisChannelHandler: ChannelInboundHandler {
    typealias InboundIn = RESPValue
    typealias OutboundOut = ByteBuffer

    /// What a command that was written waits for.
    enum Expectation {
        /// One reply: the command's result (an error reply fails it with `.server`).
        case reply(EventLoopPromise<RESPValue>)
        /// `remaining` pub/sub confirmations (`subscribe`, `unsubscribe`…, one per channel);
        /// the promise succeeds with the last one.
        case confirmations(remaining: Int, EventLoopPromise<Void>)

        func fail(_ error: RedisError) {
            switch self {
            case .reply(let promise): promise.fail(error)
            case .confirmations(_, let promise): promise.fail(error)
            }
        }
    }

    private struct Pending {
        var expectation: Expectation
        var deadline: NIODeadline
    }

    private enum State {
        /// Not in a pipeline yet.
        case idle
        case active(ChannelHandlerContext)
        /// Closed or closing: new commands fail at once with this error.
        case closed(RedisError)
    }

    /// Counts of what the handler did, for tests (automatic pipelining is observable).
    struct Statistics: Sendable, Hashable {
        /// Commands encoded.
        var commands = 0
        /// Flushes (each writes every command encoded since the previous one).
        var flushes = 0
    }

    private var state: State = .idle
    private var pending = CircularBuffer<Pending>(initialCapacity: 16)
    /// Commands encoded since the last flush.
    private var outbound = ByteBuffer()
    private var flushScheduled = false
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?
    private let logger: Logger
    /// The number of commands waiting for a reply, readable from any thread (pool balancing).
    let pendingCount: ManagedAtomic<Int>
    private(set) var statistics = Statistics()

    /// Set in pub/sub mode: called on the event loop for every `message`, `pmessage` and `smessage`
    /// with the channel and the payload. In that mode replies are pub/sub confirmations.
    var onPubSubMessage: ((String, ByteBuffer) -> Void)?

    init(logger: Logger, pendingCount: ManagedAtomic<Int>) {
        self.logger = logger
        self.pendingCount = pendingCount
    }

    // MARK: - Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        state = .active(context)
        outbound = context.channel.allocator.buffer(capacity: 512)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        failAll(.connectionClosed)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(.connectionClosed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A decoder error is a RedisError already; an I/O error (reset) means the connection is gone.
        let redisError = error as? RedisError ?? .connectionClosed
        if case .protocolError(let message) = redisError {
            logger.warning("Redis protocol error, closing the connection", metadata: ["error": "\(message)"])
        }
        closeWith(redisError, context: context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let value = unwrapInboundIn(data)
        if onPubSubMessage != nil {
            handlePubSub(value, context: context)
            return
        }
        if case .push = value { return }  // RESP3 out-of-band data on a command connection: not a reply
        guard let head = popPending() else {
            closeWith(.protocolError("a reply arrived with no command waiting"), context: context)
            return
        }
        switch head {
        case .reply(let promise):
            if case .error(let message) = value {
                promise.fail(RedisError.server(message))
            } else {
                promise.succeed(value)
            }
        case .confirmations(_, let promise):
            closeWith(.protocolError("expected a pub/sub confirmation, got \(value)"), context: context)
            promise.fail(RedisError.protocolError("unexpected reply"))
        }
    }

    // MARK: - Commands

    /// Encodes `command` for the next flush and waits `timeout` at most for what it expects.
    func send(_ command: RESPCommand, expecting expectation: Expectation, timeout: TimeAmount) {
        guard case .active(let context) = state else {
            if case .closed(let error) = state { expectation.fail(error) } else { expectation.fail(.unavailable) }
            return
        }
        command.encode(into: &outbound)
        statistics.commands += 1
        let deadline = context.eventLoop.now + timeout
        pending.append(Pending(expectation: expectation, deadline: deadline))
        pendingCount.wrappingIncrement(ordering: .relaxed)
        armTimer(for: deadline, context: context)
        if !flushScheduled {
            // Every command of this event-loop turn goes out in one write and one flush.
            flushScheduled = true
            context.eventLoop.assumeIsolated().execute { self.flush() }
        }
    }

    private func flush() {
        flushScheduled = false
        guard case .active(let context) = state, outbound.readableBytes > 0 else { return }
        let bytes = outbound
        outbound = context.channel.allocator.buffer(capacity: 512)
        statistics.flushes += 1
        context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
    }

    /// Closes the connection and fails every pending command with `error`.
    func close(with error: RedisError) {
        guard case .active(let context) = state else { return }
        closeWith(error, context: context)
    }

    // MARK: - Pub/sub

    private func handlePubSub(_ value: RESPValue, context: ChannelHandlerContext) {
        let elements: [RESPValue]
        switch value {
        case .push(let items), .array(let items?):
            elements = items
        case .error(let message):
            popPending()?.fail(.server(message))
            return
        default:
            replyToHead(value, context: context)
            return
        }
        guard let kind = elements.first?.string?.lowercased() else {
            closeWith(.protocolError("pub/sub push without a kind"), context: context)
            return
        }
        switch kind {
        case "message", "smessage":
            guard elements.count == 3, let channel = elements[1].string, let payload = elements[2].buffer else {
                closeWith(.protocolError("malformed \(kind)"), context: context)
                return
            }
            onPubSubMessage?(channel, payload)
        case "pmessage":
            guard elements.count == 4, let channel = elements[2].string, let payload = elements[3].buffer else {
                closeWith(.protocolError("malformed pmessage"), context: context)
                return
            }
            onPubSubMessage?(channel, payload)
        case "subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe", "sunsubscribe":
            guard let head = pending.first, case .confirmations(let remaining, let promise) = head.expectation else {
                // Unsolicited (a sharded channel moved, say): nothing waits for it.
                logger.debug("unsolicited pub/sub confirmation", metadata: ["kind": "\(kind)"])
                return
            }
            if remaining > 1 {
                pending[pending.startIndex].expectation = .confirmations(remaining: remaining - 1, promise)
            } else {
                _ = popPending()
                promise.succeed()
            }
        default:
            replyToHead(value, context: context)  // ["pong", ""] answering PING in RESP2 pub/sub mode
        }
    }

    private func replyToHead(_ value: RESPValue, context: ChannelHandlerContext) {
        guard let head = pending.first, case .reply(let promise) = head.expectation else {
            closeWith(.protocolError("unexpected reply in pub/sub mode: \(value)"), context: context)
            return
        }
        _ = popPending()
        promise.succeed(value)
    }

    // MARK: - Deadlines and failure

    private func popPending() -> Expectation? {
        guard let head = pending.popFirst() else { return nil }
        pendingCount.wrappingDecrement(ordering: .relaxed)
        return head.expectation
    }

    /// One timer, armed for the earliest deadline it knows of; when it fires it looks for an
    /// expired command and otherwise re-arms for the earliest pending deadline.
    private func armTimer(for deadline: NIODeadline, context: ChannelHandlerContext) {
        if let armed = timerDeadline, armed <= deadline { return }
        timer?.cancel()
        timerDeadline = deadline
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { self.timerFired() }
    }

    private func timerFired() {
        timer = nil
        timerDeadline = nil
        guard case .active(let context) = state, var earliest = pending.first?.deadline else { return }
        for entry in pending where entry.deadline < earliest { earliest = entry.deadline }
        let now = context.eventLoop.now
        guard earliest <= now else {
            armTimer(for: earliest, context: context)
            return
        }
        // Replies after this one would be matched to the wrong commands: give up the connection.
        logger.debug("Redis command timed out, closing the connection")
        state = .closed(.connectionClosed)
        let expired = pending
        pending.removeAll()
        pendingCount.store(0, ordering: .relaxed)
        for entry in expired {
            entry.expectation.fail(entry.deadline <= now ? .timeout : .connectionClosed)
        }
        context.close(promise: nil)
    }

    private func closeWith(_ error: RedisError, context: ChannelHandlerContext) {
        guard case .active = state else { return }
        failAll(error)
        context.close(promise: nil)
    }

    /// Marks the handler closed (new commands fail with `.connectionClosed`) and fails what is
    /// pending with `error`.
    private func failAll(_ error: RedisError) {
        state = .closed(.connectionClosed)
        timer?.cancel()
        timer = nil
        timerDeadline = nil
        let failed = pending
        pending.removeAll()
        pendingCount.store(0, ordering: .relaxed)
        outbound.clear()
        for entry in failed { entry.expectation.fail(error) }
    }
}

@available(*, unavailable)
extension RedisChannelHandler: Sendable {}
