import Foundation
import NIOCore
import NIOPosix

/// Runs bench scenarios against a Switchboard server on loopback.
///
///     var options = BenchOptions()
///     options.url = "ws://127.0.0.1:8080/ws"
///     options.serverPID = serverPID
///     let report = try await BenchRunner.run(.fanout, options: options)
///     print(report.table())
///
/// The client side is raw SwiftNIO (hand-written upgrade and frames, no JSON decoding), on a
/// `MultiThreadedEventLoopGroup` of one thread per usable core, so that the generator is cheap
/// per message; each result reports the generator's own CPU and flags generator-bound results.
public enum BenchRunner {
    /// Runs `scenario`. Throws ``BenchError`` for invalid options (a URL that is not loopback
    /// included) and when too few connections could be set up to measure anything.
    public static func run(_ scenario: BenchScenario, options: BenchOptions) async throws -> BenchReport {
        try options.validate(for: scenario)
        let targets = try options.urls.map { try BenchTarget(url: $0) }
        let publisherTarget = try options.publisherURL.map { try BenchTarget(url: $0) }
        ProcessStats.raiseOpenFileLimit()
        let startedAt = ISO8601DateFormatter().string(from: Date())
        let threads = options.threads ?? max(1, min(System.coreCount, ProcessStats.allowedCPUCount() ?? System.coreCount))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let result: BenchResult
        do {
            let stats = try await EventLoopStats.make(for: group)
            let context = BenchContext(
                options: options, targets: targets, publisherTarget: publisherTarget, group: group, stats: stats,
                loopThreads: await stats.threadIDs())
            switch scenario {
            case .fanout: result = .fanout(try await ScenarioFanout.run(context))
            case .sweep: result = .sweep(try await ScenarioSweep.run(context))
            case .chat: result = .chat(try await ScenarioChat.run(context))
            case .idle: result = .idle(try await ScenarioIdle.run(context))
            case .rtt: result = .rtt(try await ScenarioRTT.run(context))
            case .connect: result = .connect(try await ScenarioConnect.run(context))
            case .resume: result = .resume(try await ScenarioResume.run(context))
            case .history: result = .history(try await ScenarioHistory.run(context))
            case .soak: result = .soak(try await ScenarioSoak.run(context))
            }
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        try? await group.shutdownGracefully()
        return BenchReport(
            scenario: scenario, url: options.allURLs.joined(separator: " "), startedAt: startedAt, generatorThreads: threads,
            serverPid: options.serverPID, result: result)
    }
}
