import Foundation
import NIOCore

/// Result of `rtt`.
public struct RTTResult: Sendable, Codable, Equatable {
    /// The connect phase.
    public var connect: ConnectSummary
    /// Clients in the closed loop.
    public var clients: Int
    /// Measured time, seconds.
    public var durationS: Double
    /// Acks received.
    public var acks: Int
    /// `error` replies, plus clients whose loop ended by a timeout or a closed connection.
    public var errors: Int
    /// Acks per second, all clients together.
    public var acksPerS: Double
    /// `message.send` → `ack` round-trip time.
    public var rtt: LatencySummary
    /// CPU over the measured time.
    public var cpu: CPUUsage
}

/// `clients` connections, each alone in its room `rtt-<i>`, each sending `message.send` and
/// waiting for the ack before sending the next, for `duration`.
enum ScenarioRTT {
    static func run(_ context: BenchContext) async throws -> RTTResult {
        let options = context.options
        let phase = await context.connectAndJoin(count: options.clients, firstIndex: 0, phase: "rtt: connecting") { "rtt-\($0)" }
        let connections = phase.connections
        guard !connections.isEmpty else {
            throw BenchError.setupFailed("no client could connect and join: \(phase.firstError ?? "unknown error")")
        }
        do {
            for connection in connections {
                try await connection.configureMessages(room: "rtt-\(connection.index)", payloadBytes: options.payloadBytes)
            }
        } catch {
            await BenchConnection.closeAll(connections)
            throw error
        }
        await context.stats.openWindow(startNanos: unixNanos())
        let cpu = context.cpuWindow()
        let started = NIODeadline.now()
        let until = started + TimeAmount(options.duration)
        let line: @Sendable () async -> String = {
            let counters = await context.stats.counters()
            let elapsed = (NIODeadline.now() - started).nanoseconds
            return "rtt: \(counters.roundTrips) acks (\(perSecond(counters.roundTrips, over: elapsed))/s), errors \(counters.errors)"
        }
        let failedLoops = try await Progress.during(options.showProgress, line) { () async -> Int in
            await withTaskGroup(of: Bool.self) { tasks in
                for connection in connections {
                    tasks.addTask {
                        do {
                            try await connection.roundTrips(until: until, timeout: options.replyTimeout)
                            return true
                        } catch {
                            return false
                        }
                    }
                }
                var failed = 0
                for await succeeded in tasks where !succeeded { failed += 1 }
                return failed
            }
        }
        let wall = Double((NIODeadline.now() - started).nanoseconds) / 1e9
        let usage = cpu.stop()
        let measurement = await context.stats.closeWindow()
        await BenchConnection.closeAll(connections)
        let acks = Int(measurement.roundTrips.count)
        return RTTResult(
            connect: phase.summary, clients: connections.count, durationS: round2(wall), acks: acks,
            errors: measurement.counters.errors + failedLoops, acksPerS: (Double(acks) / wall).rounded(),
            rtt: measurement.roundTrips.summary, cpu: usage)
    }
}
