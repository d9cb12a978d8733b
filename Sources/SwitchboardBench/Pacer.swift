import NIOCore

/// Sends `message.send` at a steady rate from connections of one event loop, on that loop.
///
/// Message k is due at `start + k / rate`; each tick sends every message due (round-robin over
/// the senders, so each sends at `rate / senders.count`), flushes once, and sleeps until the
/// next one is due (at least 1 ms, so high rates are sent in small batches). A sender whose
/// outbound buffer is full is not written to: like a blocking writer, the pacer then falls
/// behind, and the achieved rate shows it.
final class Pacer {
    /// What a pacer achieved.
    struct Outcome: Sendable {
        /// Messages written per sender, in the order of the senders.
        var sentPerSender: [Int]
        /// Time from the first send to the end.
        var wallNanos: Int64
        /// Ticks at which a full buffer stopped the sending.
        var blockedTicks: Int

        var sent: Int { sentPerSender.reduce(0, +) }
    }

    private static let minimumTick: Int64 = 1_000_000

    private let loop: any EventLoop
    private let senders: [BenchClientHandler]
    private let intervalNanos: Double
    private let durationNanos: Int64
    private let promise: EventLoopPromise<Outcome>
    private let start: NIODeadline
    private var sent = 0
    private var sentPerSender: [Int]
    private var blockedTicks = 0

    private init(loop: any EventLoop, senders: [BenchClientHandler], rate: Double, duration: Duration) {
        self.loop = loop
        self.senders = senders
        intervalNanos = 1e9 / rate
        durationNanos = Int64(TimeAmount(duration).nanoseconds)
        promise = loop.makePromise(of: Outcome.self)
        start = .now()
        sentPerSender = Array(repeating: 0, count: senders.count)
    }

    /// Starts sending at `rate` messages per second in all (call on `loop`); the future succeeds
    /// after `duration`.
    static func start(on loop: any EventLoop, senders: [BenchClientHandler], rate: Double, duration: Duration) -> EventLoopFuture<Outcome> {
        guard !senders.isEmpty, rate > 0 else {
            return loop.makeSucceededFuture(Outcome(sentPerSender: [], wallNanos: 0, blockedTicks: 0))
        }
        let pacer = Pacer(loop: loop, senders: senders, rate: rate, duration: duration)
        pacer.tick()
        return pacer.promise.futureResult
    }

    private func tick() {
        let now = NIODeadline.now()
        let elapsed = Int64(now.uptimeNanoseconds) - Int64(start.uptimeNanoseconds)
        if elapsed >= durationNanos {
            promise.succeed(Outcome(sentPerSender: sentPerSender, wallNanos: elapsed, blockedTicks: blockedTicks))
            return
        }
        let due = Int(Double(elapsed) / intervalNanos) + 1
        let first = sent
        var blocked = false
        while sent < due {
            let index = sent % senders.count
            let sender = senders[index]
            guard sender.canSend else {
                blocked = true
                break
            }
            sender.writeMessage()
            sentPerSender[index] += 1
            sent += 1
        }
        // Flush each sender written to (all of them once the batch went round).
        if sent - first >= senders.count {
            for sender in senders { sender.flush() }
        } else {
            for position in first..<sent { senders[position % senders.count].flush() }
        }
        var next: Int64
        if blocked {
            blockedTicks += 1
            next = elapsed + Self.minimumTick
        } else {
            next = max(Int64(Double(sent) * intervalNanos), elapsed + Self.minimumTick)
        }
        next = min(next, durationNanos)
        loop.assumeIsolated().scheduleTask(deadline: start + .nanoseconds(next)) { [self] in
            self.tick()
        }
    }
}
