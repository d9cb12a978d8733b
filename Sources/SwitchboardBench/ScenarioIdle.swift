import Foundation

/// Result of `idle`.
public struct IdleResult: Sendable, Codable, Equatable {
    /// The connect phase.
    public var connect: ConnectSummary
    /// The server process measured.
    public var serverPid: Int32
    /// The server's VmRSS before connecting, KiB.
    public var rssBeforeKib: Int
    /// The server's VmRSS with all connections open and joined, after the settle time, KiB.
    public var rssAfterKib: Int
    /// (after − before) / connections, KiB.
    public var kibPerConnection: Double
    /// Wait between the last join and the measurement, seconds.
    public var settleS: Double
    /// Connections still open when measured.
    public var aliveAtMeasurement: Int
    /// CPU over the connect phase (connecting, authenticating and joining).
    public var cpu: CPUUsage
}

/// Opens `connections` connections, each authenticated and joined to one of the rooms
/// `idle-0…idle-99`, and reads the server's resident memory before and after.
enum ScenarioIdle {
    static func run(_ context: BenchContext) async throws -> IdleResult {
        let options = context.options
        guard let pid = options.serverPID else {
            throw BenchError.invalidOption("idle needs --server-pid")
        }
        guard let before = ProcessStats.residentKiB(pid: pid) else {
            throw BenchError.procUnavailable("cannot read VmRSS of process \(pid) from /proc/\(pid)/status")
        }
        let cpu = context.cpuWindow()
        let phase = await context.connectAndJoin(count: options.connections, firstIndex: 0, phase: "idle: connecting") { "idle-\($0 % 100)" }
        let connections = phase.connections
        let usage = cpu.stop()
        if options.showProgress {
            Progress.write("idle: \(connections.count) connections joined (\(phase.failed) failed); settling \(secondsText(options.settle))")
        }
        try? await Task.sleep(for: options.settle)
        let after = ProcessStats.residentKiB(pid: pid)
        let alive = connections.filter(\.isActive).count
        await BenchConnection.closeAll(connections)
        guard let after else {
            throw BenchError.procUnavailable("cannot read VmRSS of process \(pid) after connecting (did it exit?)")
        }
        return IdleResult(
            connect: phase.summary, serverPid: pid, rssBeforeKib: before, rssAfterKib: after,
            kibPerConnection: connections.isEmpty ? 0 : round2(Double(after - before) / Double(connections.count)),
            settleS: durationSeconds(options.settle), aliveAtMeasurement: alive, cpu: usage)
    }
}
