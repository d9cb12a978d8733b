import Foundation
import NIOCore

/// One progress line per second on standard error while a phase runs.
enum Progress {
    /// Runs `body`; meanwhile, when `enabled`, prints `line()` every second.
    static func during<Result: Sendable>(
        _ enabled: Bool, _ line: @escaping @Sendable () async -> String, _ body: () async throws -> Result
    ) async throws -> Result {
        guard enabled else { return try await body() }
        let started = ContinuousClock.now
        let printer = Task {
            while !Task.isCancelled {
                try await Task.sleep(for: .seconds(1))
                let elapsed = ContinuousClock.now - started
                let text = await line()
                write(String(format: "[bench %5.1fs] ", Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18) + text)
            }
        }
        defer { printer.cancel() }
        return try await body()
    }

    /// Writes one line to standard error.
    static func write(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}

/// A counter shared by concurrent connect tasks and read by the progress line.
final class SharedCounter: @unchecked Sendable {
    // @unchecked Sendable: `values` is only read or written while holding `lock`.
    private let lock = NSLock()
    private var values: [Int]

    init(slots: Int) {
        values = Array(repeating: 0, count: slots)
    }

    func add(_ amount: Int, slot: Int = 0) {
        lock.lock()
        values[slot] += amount
        lock.unlock()
    }

    func value(_ slot: Int = 0) -> Int {
        lock.lock()
        defer { lock.unlock() }
        return values[slot]
    }
}

/// Formats a count per second for progress lines.
func perSecond(_ count: Int, over nanos: Int64) -> String {
    guard nanos > 0 else { return "0" }
    return String(Int((Double(count) * 1e9 / Double(nanos)).rounded()))
}
