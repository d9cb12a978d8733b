import Foundation
import NIOCore

/// One measured send window of a fan-out: a publisher at a fixed rate, then a bounded drain.
public struct FanoutStep: Sendable, Codable, Equatable {
    /// The rate asked for, messages per second.
    public var rateTarget: Double
    /// Messages the publisher wrote.
    public var sent: Int
    /// Messages per second the publisher achieved.
    public var rateActual: Double
    /// Subscribers at the start of the step.
    public var subscribers: Int
    /// Subscribers whose connection was still open at the end.
    public var subscribersAliveAfter: Int
    /// `sent` × `subscribers`.
    public var expected: Int
    /// Deliveries counted (sent during the step, received before the drain ended).
    public var delivered: Int
    /// `delivered` / `expected`.
    public var deliveredFraction: Double
    /// `delivered` / send time.
    public var deliveriesPerS: Double
    /// Acks the publisher received.
    public var publisherAcks: Int
    /// `error` replies received.
    public var errors: Int
    /// Ticks at which the publisher's outbound buffer was full.
    public var publisherBlockedTicks: Int
    /// Delivery latency: receive time − the send time embedded by the publisher.
    public var latency: LatencySummary
    /// CPU over the send window.
    public var cpu: CPUUsage
    /// Whether the step met the criteria (delivered, p99, publisher rate).
    public var pass: Bool
    /// Why it did not.
    public var reason: String?
    /// True for the second try of a failed sweep step.
    public var retry: Bool?
}

/// Result of `fanout`.
public struct FanoutResult: Sendable, Codable, Equatable {
    /// The connect phase (subscribers and publisher).
    public var connect: ConnectSummary
    /// The room.
    public var room: String
    /// Content bytes per message.
    public var payloadBytes: Int
    /// Send time, seconds.
    public var durationS: Double
    /// The measurement.
    public var step: FanoutStep
}

/// The subscribers and the publisher of a fan-out room.
struct FanoutRoom: Sendable {
    var subscribers: [BenchConnection]
    var publisher: BenchConnection
    var connect: ConnectSummary

    /// Connects `options.subscribers` subscribers and then the publisher (user `bench-<N>`),
    /// all joined to `options.room`, and waits until the join announcements have settled.
    static func open(_ context: BenchContext, phase: String) async throws -> FanoutRoom {
        let options = context.options
        let room = options.room
        let phaseResult = await context.connectAndJoin(count: options.subscribers, firstIndex: 0, phase: "\(phase): connecting subscribers") { _ in room }
        guard !phaseResult.connections.isEmpty else {
            throw BenchError.setupFailed("no subscriber could connect and join: \(phaseResult.firstError ?? "unknown error")")
        }
        let publisherPhase = await context.forPublisher.connectAndJoin(count: 1, firstIndex: options.subscribers, phase: "\(phase): connecting the publisher") { _ in room }
        guard let publisher = publisherPhase.connections.first else {
            await BenchConnection.closeAll(phaseResult.connections)
            throw BenchError.setupFailed("the publisher could not connect and join: \(publisherPhase.firstError ?? "unknown error")")
        }
        try await publisher.configureMessages(room: room, payloadBytes: options.payloadBytes)
        var summary = phaseResult.summary
        summary.requested += 1
        summary.connected += 1
        summary.seconds = round2(Double((publisherPhase.finished - phaseResult.started).nanoseconds) / 1e9)
        await context.waitUntilQuiet(limit: .seconds(15))
        return FanoutRoom(subscribers: phaseResult.connections, publisher: publisher, connect: summary)
    }

    func closeAll() async {
        await BenchConnection.closeAll(subscribers + [publisher])
    }

    /// Sends at `rate` for `duration`, drains, and measures (see ``FanoutStep``).
    func runStep(_ context: BenchContext, rate: Double, duration: Duration, label: String) async throws -> FanoutStep {
        let options = context.options
        let subscriberCount = subscribers.count
        await context.stats.openWindow(startNanos: unixNanos())
        let cpu = context.cpuWindow()
        let started = NIODeadline.now()
        let publisher = self.publisher
        let line: @Sendable () async -> String = {
            let counters = await context.stats.counters()
            let elapsed = (NIODeadline.now() - started).nanoseconds
            return "\(label): sent \(counters.sent), delivered \(counters.delivered) (\(perSecond(counters.delivered, over: elapsed))/s), rate \(perSecond(counters.sent, over: elapsed)) msg/s"
        }
        let outcome = try await Progress.during(options.showProgress, line) { () async throws -> Pacer.Outcome in
            let handler = publisher.handler
            let paced = try await publisher.eventLoop.flatSubmit {
                Pacer.start(on: handler.eventLoop, senders: [handler.value], rate: rate, duration: duration)
            }.get()
            return paced
        }
        let usage = cpu.stop()
        let expected = outcome.sent * subscriberCount
        let drainDeadline = ContinuousClock.now + options.drain
        while ContinuousClock.now < drainDeadline, await context.stats.counters().delivered < expected {
            try? await Task.sleep(for: .milliseconds(10))
        }
        let measurement = await context.stats.closeWindow()
        let wallSeconds = max(1e-9, Double(outcome.wallNanos) / 1e9)
        let latency = measurement.latency.summary
        let delivered = measurement.counters.delivered
        var step = FanoutStep(
            rateTarget: round2(rate), sent: outcome.sent, rateActual: round1(Double(outcome.sent) / wallSeconds),
            subscribers: subscriberCount, subscribersAliveAfter: subscribers.filter(\.isActive).count,
            expected: expected, delivered: delivered,
            deliveredFraction: expected > 0 ? round4(Double(delivered) / Double(expected)) : 0,
            deliveriesPerS: (Double(delivered) / wallSeconds).rounded(),
            publisherAcks: measurement.counters.acks, errors: measurement.counters.errors,
            publisherBlockedTicks: outcome.blockedTicks, latency: latency, cpu: usage, pass: true, reason: nil, retry: nil)
        let maximumP99 = Double(options.maximumP99.components.seconds) * 1000 + Double(options.maximumP99.components.attoseconds) / 1e15
        if step.deliveredFraction < options.minimumDelivered {
            step.pass = false
            step.reason = "delivered \(fixed(step.deliveredFraction, 4)) < \(fixed(options.minimumDelivered, 2))"
        } else if latency.p99Ms > maximumP99 {
            step.pass = false
            step.reason = "p99 \(fixed(latency.p99Ms, 1)) ms > \(fixed(maximumP99, 0)) ms"
        } else if step.rateActual < options.minimumPublisherRate * rate {
            step.pass = false
            step.reason = "publisher reached only \(fixed(step.rateActual, 1)) msg/s"
        }
        if options.showProgress {
            let server = usage.serverCPUPct.map { ", server CPU \(fixed($0, 0))%" } ?? ""
            let verdict = step.pass ? "pass" : "FAIL (\(step.reason ?? ""))"
            Progress.write(
                "\(label) done: rate \(fixed(rate, 1)), delivered \(delivered)/\(expected) (\(fixed(step.deliveredFraction, 4))), "
                    + "\(fixed(step.deliveriesPerS, 0)) deliveries/s, p50 \(fixed(latency.p50Ms, 2)) ms, p99 \(fixed(latency.p99Ms, 2)) ms, "
                    + "generator CPU \(fixed(usage.generatorCPUPct, 0))%\(server) → \(verdict)")
        }
        return step
    }
}

enum ScenarioFanout {
    static func run(_ context: BenchContext) async throws -> FanoutResult {
        let options = context.options
        let room = try await FanoutRoom.open(context, phase: "fanout")
        let step: FanoutStep
        do {
            step = try await room.runStep(context, rate: options.rate, duration: options.duration, label: "fanout")
        } catch {
            await room.closeAll()
            throw error
        }
        await room.closeAll()
        return FanoutResult(
            connect: room.connect, room: options.room, payloadBytes: options.payloadBytes,
            durationS: durationSeconds(options.duration), step: step)
    }
}

/// A duration in seconds, rounded to milliseconds.
func durationSeconds(_ duration: Duration) -> Double {
    round3(Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18)
}

/// A duration for people: "3 s", "0.5 s".
func secondsText(_ duration: Duration) -> String {
    let seconds = durationSeconds(duration)
    return (seconds == seconds.rounded() ? fixed(seconds, 0) : String(seconds)) + " s"
}

/// `value` with `digits` decimals.
func fixed(_ value: Double, _ digits: Int) -> String {
    String(format: "%.\(digits)f", value)
}
