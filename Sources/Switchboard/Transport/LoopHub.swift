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
    /// Carries an idempotency claim that completed at once out of its callback (see
    /// `MessageDispatcher.claim`): one slot per loop, since such a callback runs before the call
    /// that registered it returns.
    var inlineClaim: MessageDispatcher.ClaimOutcome?
    var awaitingInlineClaim = false

    private var sockets: [Socket] = []
    private var needingFlush: [Socket] = []
    private var flushing: [Socket] = []
    private var flushScheduled = false
    private var sweepTask: RepeatedTask?

    init(eventLoop: any EventLoop, configuration: SwitchboardConfiguration) {
        self.eventLoop = eventLoop
        self.pingInterval = TimeAmount(configuration.pingInterval)
        self.pongTimeout = TimeAmount(configuration.pongTimeout)
        self.idleTimeout = configuration.idleTimeout.map(TimeAmount.init)
        self.closeTimeout = TimeAmount(configuration.closeTimeout)
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
        }
    }

    var count: Int { sockets.count }

    /// Closes every connection of this loop with `code` (server shutdown).
    func closeAll(code: UInt16, reason: String) {
        for socket in sockets {
            socket.closeOnLoop(code: code, reason: reason, then: .awaitReply)
        }
    }

    // MARK: delivery

    /// On the loop: writes one pre-built frame to each member but `except`, then flushes once.
    func deliver(_ frame: ByteBuffer, to members: [Socket], except: Socket?) {
        for socket in members where socket !== except {
            socket.enqueue(frame)
        }
        scheduleFlush()
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
