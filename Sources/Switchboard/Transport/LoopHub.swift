import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// The connections of one event loop: delivers broadcasts to them, writes and flushes each
/// connection with something to send once per loop turn, and runs one heartbeat sweep for all
/// of them (so an idle connection holds no timer of its own).
final class LoopHub: @unchecked Sendable {
    // @unchecked Sendable: `eventLoop` and the timer settings are immutable; every `var` is only
    // touched on `eventLoop`.

    let eventLoop: any EventLoop
    let pingInterval: TimeAmount
    let pongTimeout: TimeAmount
    let idleTimeout: TimeAmount?
    let closeTimeout: TimeAmount
    /// Shared by the connections of this loop to parse their messages.
    let decoder = JSONDecoder()
    /// The zlib streams of this loop's connections that negotiated permessage-deflate; `nil`
    /// when the server does not offer it.
    let deflater: MessageDeflater?
    /// Carries an idempotency claim that completed at once out of its callback (see
    /// `MessageDispatcher.claim`): one slot per loop, since such a callback runs before the call
    /// that registered it returns.
    var inlineClaim: MessageDispatcher.ClaimOutcome?
    var awaitingInlineClaim = false
    /// This loop's counters: plain integers, touched only on the loop (see ``LoopMetrics``).
    var metrics = LoopMetrics()

    private var sockets: [Socket] = []
    private var needingFlush: [Socket] = []
    private var flushing: [Socket] = []
    private var flushScheduled = false
    private var sweepTask: RepeatedTask?
    /// The drain of this loop's connections, once the server drains.
    private(set) var drainProgress: DrainProgress?
    /// Completed when the drain has left this loop without connections.
    private var drained: EventLoopPromise<Void>?

    init(eventLoop: any EventLoop, configuration: SwitchboardConfiguration, draining: Bool = false) {
        self.eventLoop = eventLoop
        self.pingInterval = TimeAmount(configuration.pingInterval)
        self.pongTimeout = TimeAmount(configuration.pongTimeout)
        self.idleTimeout = configuration.idleTimeout.map(TimeAmount.init)
        self.closeTimeout = TimeAmount(configuration.closeTimeout)
        self.deflater = configuration.compression.map(MessageDeflater.init(configuration:))
        // A loop's first connection during a drain (its handshake was accepted before): it is
        // closed as soon as it opens.
        if draining { drainProgress = DrainProgress(initial: 0, final: true) }
    }

    /// How often the sweep runs: a fraction of the shortest timer, so each fires at most that late.
    private var sweepInterval: TimeAmount {
        var shortest = min(pingInterval, pongTimeout)
        if let idleTimeout { shortest = min(shortest, idleTimeout) }
        let interval = shortest.nanoseconds / 4
        return .nanoseconds(max(TimeAmount.milliseconds(10).nanoseconds, min(interval, TimeAmount.seconds(1).nanoseconds)))
    }

    // MARK: membership of the loop

    func add(_ socket: Socket) {
        eventLoop.preconditionInEventLoop()
        socket.hubIndex = sockets.count
        sockets.append(socket)
        if drainProgress?.final == true {
            // Accepted before the drain began, opened after its last step.
            scheduleDrainRetry()
        }
        if sweepTask == nil {
            let interval = sweepInterval
            sweepTask = eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] _ in
                self?.sweep()
            }
        }
    }

    func remove(_ socket: Socket) {
        eventLoop.preconditionInEventLoop()
        let index = socket.hubIndex
        guard index >= 0, index < sockets.count, sockets[index] === socket else { return }
        let last = sockets.removeLast()
        if index < sockets.count {
            sockets[index] = last
            last.hubIndex = index
        }
        socket.hubIndex = -1
        if sockets.isEmpty {
            sweepTask?.cancel()
            sweepTask = nil
            if let drained {
                self.drained = nil
                drained.succeed()
            }
        }
    }

    var count: Int { sockets.count }

    /// Closes every connection of this loop with `code` (server shutdown).
    func closeAll(code: UInt16, reason: String) {
        for socket in sockets {
            socket.closeOnLoop(code: code, reason: reason, then: .awaitReply)
        }
    }

    // MARK: drain

    /// On the loop: starts draining this loop's connections (see ``drainStep(_:of:)``); the
    /// future completes once none is left.
    func beginDrain() -> EventLoopFuture<Void> {
        if drainProgress == nil {
            drainProgress = DrainProgress(initial: sockets.count)
            if !sockets.isEmpty { drained = eventLoop.makePromise(of: Void.self) }
        }
        return drained?.futureResult ?? eventLoop.makeSucceededVoidFuture()
    }

    /// On the loop: step `step` of `steps` of the drain. By step k, k/steps of the connections open
    /// when the drain began have been sent 1012, in the order of this loop's list (a connection's
    /// slot follows from its place in it, so no connection holds a timer or any state of its own);
    /// the last step closes all that are left.
    func drainStep(_ step: Int, of steps: Int) {
        guard var progress = drainProgress else { return }
        if step >= steps {
            progress.final = true
        } else {
            progress.target = max(progress.target, (progress.initial * step + steps - 1) / steps)
        }
        drainProgress = progress
        closeDueConnections()
    }

    private func closeDueConnections() {
        guard var progress = drainProgress else { return }
        var deferred = false
        // `sockets` is iterated as it was: a close that ends a connection at once changes it.
        for socket in sockets where socket.state == .open {
            guard progress.final || progress.closed < progress.target else { break }
            if socket.busy || socket.inFlight > 0 {
                // A message being handled gets its reply first; the connection closes after.
                deferred = true
                continue
            }
            progress.closed += 1
            socket.closeOnLoop(code: CloseCode.serviceRestart, reason: "server restarting", then: .awaitReply)
        }
        drainProgress?.closed = progress.closed
        if deferred { scheduleDrainRetry() }
    }

    /// Looks again shortly for connections that are due but were busy or not yet open: one timer
    /// for the loop, however many they are.
    private func scheduleDrainRetry() {
        guard drainProgress?.retryScheduled == false else { return }
        drainProgress?.retryScheduled = true
        eventLoop.scheduleTask(in: .milliseconds(10)) {
            self.drainProgress?.retryScheduled = false
            self.closeDueConnections()
        }
    }

    /// On the loop: the drain timed out; every connection left is closed at once, with 1012 if it
    /// was still open.
    func dropAll() {
        drainProgress?.final = true
        for socket in sockets {
            if socket.state == .open {
                socket.closeOnLoop(code: CloseCode.serviceRestart, reason: "server restarting", then: .closeNow)
            } else {
                socket.channel.close(promise: nil)
            }
        }
    }

    // MARK: delivery

    /// On the loop: writes one pre-built frame to each member but `except`, then flushes once.
    /// Members that negotiated permessage-deflate share one compressed copy (one per window size
    /// asked for), made on the first of them.
    func deliver(_ frame: ByteBuffer, to members: [Socket], except: Socket?) {
        var variants = DeflatedVariants(plain: frame)
        var delivered = 0
        for socket in members where socket !== except {
            if socket.deflate == 0 {
                socket.enqueueShared(frame)
            } else {
                socket.enqueueShared(variants.frame(windowBits: socket.deflate, deflater: deflater, allocator: socket.channel.allocator))
            }
            delivered &+= 1
        }
        metrics.deliveries &+= delivered
        scheduleFlush()
    }

    /// On the loop: writes `frame` to every open connection of `user` on this loop; returns how many.
    func deliver(_ frame: ByteBuffer, toUser user: String) -> Int {
        var sent = 0
        for socket in sockets where socket.state == .open && socket.user.id == user {
            socket.enqueue(frame)
            sent += 1
        }
        metrics.deliveries &+= sent
        scheduleFlush()
        return sent
    }

    /// On the loop: one handler's time from dispatch to reply.
    func recordHandlerLatency(since started: NIODeadline) {
        metrics.handlerLatency.record(nanoseconds: (NIODeadline.now() - started).nanoseconds)
    }

    func markNeedsFlush(_ socket: Socket) {
        needingFlush.append(socket)
    }

    /// Writes and flushes after the tasks already queued on this loop have run, so that several
    /// messages for one connection leave in one write (see ``PendingFrames``).
    func scheduleFlush() {
        guard !flushScheduled, !needingFlush.isEmpty else { return }
        flushScheduled = true
        eventLoop.execute { self.flushAll() }
    }

    private func flushAll() {
        flushScheduled = false
        // Swapped, not copied: the list is reused turn after turn without reallocating.
        swap(&needingFlush, &flushing)
        for socket in flushing {
            socket.flushPending()
        }
        flushing.removeAll(keepingCapacity: true)
    }

    // MARK: heartbeat

    private func sweep() {
        let now = NIODeadline.now()
        var empty = ByteBuffer()
        empty.clear()
        for socket in sockets where socket.state == .open {
            if now - socket.lastInbound >= pongTimeout {
                socket.closeOnLoop(code: CloseCode.heartbeatTimeout, reason: "no pong", then: .closeNow)
            } else if let expiresAt = socket.expiresAt, now >= expiresAt {
                socket.closeOnLoop(code: CloseCode.tokenExpired, reason: "token expired", then: .awaitReply)
            } else if let idleTimeout, now - socket.lastMessage >= idleTimeout {
                socket.closeOnLoop(code: CloseCode.idleTimeout, reason: "idle", then: .awaitReply)
            } else if now - socket.lastPing >= pingInterval {
                socket.lastPing = now
                socket.sendControl(.ping, payload: empty)
            }
        }
    }
}
