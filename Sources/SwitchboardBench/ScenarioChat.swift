import Foundation
import NIOCore

/// Result of `chat`.
public struct ChatResult: Sendable, Codable, Equatable {
    /// The connect phase.
    public var connect: ConnectSummary
    /// Rooms.
    public var rooms: Int
    /// Members per room (asked for).
    public var members: Int
    /// Messages per second each member sends.
    public var ratePerMember: Double
    /// Send time, seconds.
    public var durationS: Double
    /// Messages written by all members.
    public var sent: Int
    /// Messages per second achieved, all members together.
    public var rateActual: Double
    /// Σ messages × (other members of the sender's room).
    public var expected: Int
    /// Deliveries counted.
    public var delivered: Int
    /// `delivered` / `expected`.
    public var deliveredFraction: Double
    /// `delivered` / send time.
    public var deliveriesPerS: Double
    /// Acks received by the senders.
    public var acks: Int
    /// `error` replies.
    public var errors: Int
    /// Delivery latency.
    public var latency: LatencySummary
    /// CPU over the send window.
    public var cpu: CPUUsage
    /// Delivered ≥ the minimum fraction and p99 within the limit.
    public var pass: Bool
}

/// `rooms` × `members` connections, member i in room `chat-<i / members>`; every member
/// sends `message.send` to its room at `rate` per second for `duration`.
enum ScenarioChat {
    static func run(_ context: BenchContext) async throws -> ChatResult {
        let options = context.options
        let members = options.members
        let total = options.rooms * members
        let phase = await context.connectAndJoin(count: total, firstIndex: 0, phase: "chat: connecting") { "chat-\($0 / members)" }
        let connections = phase.connections
        guard !connections.isEmpty else {
            throw BenchError.setupFailed("no member could connect and join: \(phase.firstError ?? "unknown error")")
        }
        do {
            let result = try await measure(context, connections: connections, connect: phase.summary)
            await BenchConnection.closeAll(connections)
            return result
        } catch {
            await BenchConnection.closeAll(connections)
            throw error
        }
    }

    private static func measure(_ context: BenchContext, connections: [BenchConnection], connect: ConnectSummary) async throws -> ChatResult {
        let options = context.options
        let members = options.members
        var roomSizes: [Int: Int] = [:]
        for connection in connections {
            roomSizes[connection.index / members, default: 0] += 1
            try await connection.configureMessages(room: "chat-\(connection.index / members)", payloadBytes: options.payloadBytes)
        }
        await context.waitUntilQuiet(limit: .seconds(15))

        // One pacer per event loop, for the members on that loop.
        var byLoop: [ObjectIdentifier: [BenchConnection]] = [:]
        for connection in connections {
            byLoop[ObjectIdentifier(connection.eventLoop), default: []].append(connection)
        }
        let groups = Array(byLoop.values)
        await context.stats.openWindow(startNanos: unixNanos())
        let cpu = context.cpuWindow()
        let started = NIODeadline.now()
        let line: @Sendable () async -> String = {
            let counters = await context.stats.counters()
            let elapsed = (NIODeadline.now() - started).nanoseconds
            return "chat: sent \(counters.sent) (\(perSecond(counters.sent, over: elapsed))/s), delivered \(counters.delivered) (\(perSecond(counters.delivered, over: elapsed))/s), errors \(counters.errors)"
        }
        let outcomes = try await Progress.during(options.showProgress, line) { () async throws -> [Pacer.Outcome] in
            var futures: [EventLoopFuture<Pacer.Outcome>] = []
            for group in groups {
                guard let loop = group.first?.eventLoop else { continue }
                let handlers = group.map(\.handler)
                let rate = options.rate * Double(group.count)
                futures.append(loop.flatSubmit { Pacer.start(on: loop, senders: handlers.map(\.value), rate: rate, duration: options.duration) })
            }
            var outcomes: [Pacer.Outcome] = []
            for future in futures { outcomes.append(try await future.get()) }
            return outcomes
        }
        let usage = cpu.stop()
        var expected = 0
        var sent = 0
        var wallNanos: Int64 = 1
        for (group, outcome) in zip(groups, outcomes) {
            wallNanos = max(wallNanos, outcome.wallNanos)
            for (connection, count) in zip(group, outcome.sentPerSender) {
                sent += count
                expected += count * max(0, (roomSizes[connection.index / members] ?? 1) - 1)
            }
        }
        let drainDeadline = ContinuousClock.now + options.drain
        while ContinuousClock.now < drainDeadline, await context.stats.counters().delivered < expected {
            try? await Task.sleep(for: .milliseconds(10))
        }
        let measurement = await context.stats.closeWindow()
        let wallSeconds = Double(wallNanos) / 1e9
        let delivered = measurement.counters.delivered
        let latency = measurement.latency.summary
        let fraction = expected > 0 ? round4(Double(delivered) / Double(expected)) : 0
        let maximumP99 = Double(options.maximumP99.components.seconds) * 1000 + Double(options.maximumP99.components.attoseconds) / 1e15
        return ChatResult(
            connect: connect, rooms: options.rooms, members: members, ratePerMember: options.rate,
            durationS: durationSeconds(options.duration), sent: sent, rateActual: round1(Double(sent) / wallSeconds),
            expected: expected, delivered: delivered, deliveredFraction: fraction,
            deliveriesPerS: (Double(delivered) / wallSeconds).rounded(), acks: measurement.counters.acks,
            errors: measurement.counters.errors, latency: latency, cpu: usage,
            pass: fraction >= options.minimumDelivered && latency.p99Ms <= maximumP99)
    }
}
