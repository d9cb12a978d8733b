import Foundation
import NIOCore

/// Result of `connect`.
public struct ConnectResult: Sendable, Codable, Equatable {
    /// Concurrent connectors.
    public var clients: Int
    /// Measured time, seconds.
    public var durationS: Double
    /// Completed handshakes (`101` received).
    public var handshakes: Int
    /// Attempts that failed.
    public var failed: Int
    /// Failures by kind (`http_429_too_many_connections`, `timeout`, …).
    public var failures: [String: Int]
    /// Handshakes per second.
    public var handshakesPerS: Double
    /// Time from starting the TCP connect to receiving `101`.
    public var connectTime: LatencySummary
    /// CPU over the measured time.
    public var cpu: CPUUsage
}

/// `clients` connectors, each in a closed loop: TCP connect, upgrade with a fresh JWT-checked
/// handshake, close handshake, again; until `duration` or `connections` handshakes in all.
/// Each connector cycles through 4 users, so the per-user connection limit is never reached
/// by connections that are still closing.
enum ScenarioConnect {
    private static let usersPerConnector = 4

    private struct ConnectorOutcome: Sendable {
        var times = LatencyRecorder()
        var handshakes = 0
        var failures: [String: Int] = [:]
    }

    static func run(_ context: BenchContext) async throws -> ConnectResult {
        let options = context.options
        let clients = options.clients
        var tokens: [String] = []
        for index in 0..<(clients * usersPerConnector) {
            tokens.append(try await context.token(index: index))
        }
        let tokenList = tokens
        let perConnector = max(1, (options.connections + clients - 1) / clients)
        let counter = SharedCounter(slots: 2)
        await context.stats.openWindow(startNanos: unixNanos())
        let cpu = context.cpuWindow()
        let started = NIODeadline.now()
        let until = started + TimeAmount(options.duration)
        let line: @Sendable () async -> String = {
            let elapsed = (NIODeadline.now() - started).nanoseconds
            return "connect: \(counter.value(0)) handshakes (\(perSecond(counter.value(0), over: elapsed))/s), \(counter.value(1)) failed"
        }
        let total = try await Progress.during(options.showProgress, line) { () async -> ConnectorOutcome in
            await withTaskGroup(of: ConnectorOutcome.self) { tasks in
                for connector in 0..<clients {
                    tasks.addTask {
                        var outcome = ConnectorOutcome()
                        var attempt = 0
                        while attempt < perConnector, NIODeadline.now() < until {
                            let user = connector + clients * (attempt % usersPerConnector)
                            attempt += 1
                            let begin = NIODeadline.now()
                            do {
                                let connection = try await context.connect(index: user, token: tokenList[user])
                                outcome.times.record(nanoseconds: Int64((NIODeadline.now() - begin).nanoseconds))
                                outcome.handshakes += 1
                                counter.add(1, slot: 0)
                                try? await connection.close(timeout: .seconds(2)).get()
                            } catch {
                                outcome.failures[failureKind(error), default: 0] += 1
                                counter.add(1, slot: 1)
                                try? await Task.sleep(for: .milliseconds(10))
                            }
                        }
                        return outcome
                    }
                }
                var total = ConnectorOutcome()
                for await outcome in tasks {
                    total.times.merge(outcome.times)
                    total.handshakes += outcome.handshakes
                    total.failures.merge(outcome.failures, uniquingKeysWith: +)
                }
                return total
            }
        }
        let wall = Double((NIODeadline.now() - started).nanoseconds) / 1e9
        let usage = cpu.stop()
        _ = await context.stats.closeWindow()
        return ConnectResult(
            clients: clients, durationS: round2(wall), handshakes: total.handshakes,
            failed: total.failures.values.reduce(0, +), failures: total.failures,
            handshakesPerS: (Double(total.handshakes) / wall).rounded(), connectTime: total.times.summary, cpu: usage)
    }

    static func failureKind(_ error: any Error) -> String {
        switch BenchContext.benchError(error) {
        case .handshakeRejected(let status, let code): return "http_\(status)" + (code.map { "_\($0)" } ?? "")
        case .timeout: return "timeout"
        case .connectionClosed(let message):
            if message.contains("refused") { return "connection_refused" }
            if message.contains("reset") { return "connection_reset" }
            return "connection_closed"
        case .badHandshakeResponse: return "bad_handshake_response"
        default: return "other"
        }
    }
}
