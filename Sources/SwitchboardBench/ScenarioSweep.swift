import Foundation

/// Result of `sweep`.
public struct SweepResult: Sendable, Codable, Equatable {
    /// The connect phase.
    public var connect: ConnectSummary
    /// The room.
    public var room: String
    /// Content bytes per message.
    public var payloadBytes: Int
    /// Send time per step, seconds.
    public var stepS: Double
    /// What a step must meet to pass.
    public var criteria: String
    /// Every step in order, retries and bisection steps included.
    public var steps: [FanoutStep]
    /// The highest rate that passed (0 if none did).
    public var maxSustainedRate: Double
    /// Deliveries per second at that rate: the maximum sustained fan-out.
    public var maxSustainedDeliveriesPerS: Double
    /// The step that ended the climb (after its retry), if one failed.
    public var endedBy: FanoutStep?
    /// False when no step failed (the climb stopped on the step or time limit instead).
    public var hitCeiling: Bool
    /// True when the generator was ≥ 90% busy at the best step or at the step that ended the
    /// climb: the ceiling may be the generator's, not the server's.
    public var generatorBound: Bool
    /// Why bisection stopped early, if it did.
    public var refineSkipped: String?
    /// Wall time of the sweep, seconds.
    public var sweepS: Double
}

/// Raises the rate ×`sweepFactor` per step from `sweepStartRate` until a step fails (retried
/// once after the server drained), then bisects twice between the last pass and the failure.
enum ScenarioSweep {
    static func run(_ context: BenchContext) async throws -> SweepResult {
        let options = context.options
        let room = try await FanoutRoom.open(context, phase: "sweep")
        let started = ContinuousClock.now
        func timeLeft() -> Bool { ContinuousClock.now - started < options.sweepTimeLimit }

        var steps: [FanoutStep] = []
        var best: FanoutStep?
        var failure: FanoutStep?
        var refineSkipped: String?
        do {
            var rate = options.sweepStartRate
            var climb = 0
            while climb < options.sweepMaxSteps, timeLeft() {
                climb += 1
                var step = try await room.runStep(context, rate: rate, duration: options.step, label: "sweep step \(steps.count + 1)")
                steps.append(step)
                if !step.pass, step.subscribersAliveAfter == step.subscribers, timeLeft() {
                    // One retry, so that a single disturbed step does not end the sweep.
                    await context.waitUntilQuiet(limit: .seconds(10))
                    step = try await room.runStep(context, rate: rate, duration: options.step, label: "sweep step \(steps.count + 1) (retry)")
                    step.retry = true
                    steps.append(step)
                }
                if !step.pass {
                    failure = step
                    break
                }
                best = step
                await context.waitUntilQuiet(limit: .seconds(2))
                rate *= options.sweepFactor
            }
            if let failed = failure, let passed = best {
                var low = passed.rateTarget
                var high = failed.rateTarget
                for _ in 0..<options.sweepRefineSteps {
                    guard timeLeft() else {
                        refineSkipped = "sweep time limit reached"
                        break
                    }
                    guard room.publisher.isActive else {
                        refineSkipped = "publisher connection lost"
                        break
                    }
                    await context.waitUntilQuiet(limit: .seconds(10))
                    let alive = room.subscribers.filter(\.isActive).count
                    guard alive == room.subscribers.count else {
                        refineSkipped = "\(room.subscribers.count - alive) subscribers disconnected"
                        break
                    }
                    let middle = ((low * high).squareRoot() * 10).rounded() / 10
                    guard middle > low * 1.02, middle < high * 0.98 else { break }
                    let step = try await room.runStep(context, rate: middle, duration: options.step, label: "sweep step \(steps.count + 1) (bisect)")
                    steps.append(step)
                    if step.pass {
                        low = middle
                        if step.deliveriesPerS > (best?.deliveriesPerS ?? 0) { best = step }
                    } else {
                        high = middle
                    }
                }
            }
        } catch {
            await room.closeAll()
            throw error
        }
        await room.closeAll()
        let maximumP99 = Double(options.maximumP99.components.seconds) * 1000 + Double(options.maximumP99.components.attoseconds) / 1e15
        return SweepResult(
            connect: room.connect, room: options.room, payloadBytes: options.payloadBytes,
            stepS: durationSeconds(options.step),
            criteria: "delivered >= \(fixed(options.minimumDelivered, 2)) within \(secondsText(options.drain)) and p99 <= \(fixed(maximumP99, 0)) ms "
                + "and publisher rate >= \(fixed(options.minimumPublisherRate * 100, 0))% of target",
            steps: steps,
            maxSustainedRate: best?.rateTarget ?? 0,
            maxSustainedDeliveriesPerS: best?.deliveriesPerS ?? 0,
            endedBy: failure,
            hitCeiling: failure != nil,
            generatorBound: (best?.cpu.generatorBound ?? false) || (failure?.cpu.generatorBound ?? false),
            refineSkipped: refineSkipped,
            sweepS: round1(Double((ContinuousClock.now - started).components.seconds)))
    }
}
